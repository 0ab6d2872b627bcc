/**
 * D4: text outside the Basic Multilingual Plane, end to end. A title of 45
 * emoji used to fail the goal: its 80-unit preview kept half of the 40th
 * emoji's surrogate pair, and PostgreSQL's jsonb refused the artifact.
 */
import { startEngine, type TestEngine } from '../helpers/engine';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine();
  await engine.startWorker();
});
afterAll(async () => {
  await engine?.close();
});

/** True when `s` has no unpaired surrogate. */
const wellFormed = (s: string) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

test('a goal titled with 45 emoji completes', async () => {
  const title = '😀'.repeat(45);
  const res = await engine.http('POST', '/v1/goals', { title });
  expect(res.status).toBe(202);
  const goal = await engine.waitForGoal(res.body.goalId, (g) => g.status === 'completed' || g.status === 'failed');
  expect(goal.error ?? null).toBeNull();
  expect(goal.status).toBe('completed');
  expect(goal.title).toBe(title);
  expect(goal.plan.steps.every((s: any) => s.status === 'completed')).toBe(true);
  // The summary is the title itself, whole: 45 emoji fit in a 200-code-point preview.
  expect(goal.outcome.preview).toBe(title);
});

test('previews of long astral text are cut between code points', async () => {
  // 300 emoji: over every preview limit, with a pair straddling each UTF-16 cut point.
  const text = '𝄞😀'.repeat(150);
  const res = await engine.http('POST', '/v1/goals', { title: 'Summarize the score', kind: 'note', input: { text } });
  expect(res.status).toBe(202);
  const goal = await engine.waitForGoal(res.body.goalId, (g) => g.status === 'completed' || g.status === 'failed');
  expect(goal.error ?? null).toBeNull();
  expect(goal.status).toBe('completed');
  const preview: string = goal.outcome.preview;
  expect(wellFormed(preview)).toBe(true);
  expect(preview.endsWith('…')).toBe(true);
  expect([...preview].length).toBeLessThanOrEqual(200);
  expect(text.startsWith(preview.slice(0, -1))).toBe(true);
});
