/**
 * A goal's end is recorded and remembered in one local activity (finishGoal,
 * patch keel-finish-goal). The memory is worth having, not worth failing the
 * end over: when its write fails there, the goal still ends as it should, and
 * the workflow asks for the memory again with rememberGoal (retried on its
 * own schedule) instead of writing the end twice.
 */
import type { MemoryService } from '../../memory/service';
import { startEngine, type TestEngine } from '../helpers/engine';

let engine: TestEngine;
/** Episodic memory writes the worker attempted, and how many of them failed. */
const episodes = { attempts: 0, failed: 0 };
/** How many episodic writes fail before they work again. */
let failNext = 0;

beforeAll(async () => {
  engine = await startEngine();
  await engine.startWorker({
    memory: (memory: MemoryService): MemoryService => ({
      ...memory,
      async remember(input) {
        if (input.kind === 'episodic') {
          episodes.attempts++;
          if (failNext > 0) {
            failNext--;
            episodes.failed++;
            throw new Error('memory store unavailable (test)');
          }
        }
        return memory.remember(input);
      },
    }),
  });
});
afterAll(async () => {
  await engine?.close();
});

async function runNote(title: string) {
  const res = await engine.http('POST', '/v1/goals', {
    title,
    kind: 'note',
    input: { text: `${title}. Nothing else.` },
  });
  expect(res.status).toBe(202);
  const handle = engine.temporal.client.workflow.getHandle(res.body.workflowId);
  const result = await handle.result();
  const events = (await engine.http('GET', `/v1/goals/${res.body.goalId}/events`)).body.events.map(
    (e: { type: string }) => e.type,
  );
  const history = await handle.fetchHistory();
  const markers = (history.events ?? []).filter((e) => e.markerRecordedEventAttributes).length;
  return { result, events, markers, goalId: res.body.goalId as string };
}

test('a goal ends and is remembered in one local activity', async () => {
  const before = { ...episodes };
  const { result, events, markers } = await runNote('Note the quiet week');
  expect(result).toMatchObject({ status: 'completed' });
  expect(episodes.attempts - before.attempts).toBe(1);
  expect(events.filter((t: string) => t === 'goal.completed')).toHaveLength(1);
  expect(events.at(-1)).toBe('memory.remembered');
  // One patch marker and three local activities: planning, the plan's record, the end with its memory.
  expect(markers).toBe(4);
});

test('when the memory fails with the end, the end is recorded once and the memory is written by rememberGoal', async () => {
  const before = { ...episodes };
  failNext = 1;
  const { result, events, markers, goalId } = await runNote('Note the busy week');
  expect(result).toMatchObject({ status: 'completed' });
  // Tried with the end (failed), then once more on its own (written).
  expect(episodes.failed - before.failed).toBe(1);
  expect(episodes.attempts - before.attempts).toBe(2);
  expect(events.filter((t: string) => t === 'goal.completed')).toHaveLength(1);
  expect(events.filter((t: string) => t === 'memory.remembered')).toHaveLength(1);
  // ... and a fourth, rememberGoal.
  expect(markers).toBe(5);
  const goal = await engine.db.prisma.goal.findUniqueOrThrow({ where: { id: goalId } });
  expect(goal.status).toBe('completed');
  expect(goal.finishedAt).not.toBeNull();
  expect(await engine.db.prisma.memoryItem.count({ where: { goalId, kind: 'episodic' } })).toBe(1);
});
