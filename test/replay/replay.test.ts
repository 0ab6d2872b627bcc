/**
 * Recorded histories of finished goals must replay against the current
 * workflow code. The negative control replays them against a copy of the
 * workflow with one extra command inserted, which must be refused: it proves
 * the check can fail, so a green run means something.
 */
import { cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { quietTemporalRuntime, workflowBundlePath } from '../helpers/temporal';

beforeAll(() => quietTemporalRuntime());

const ROOT = path.resolve(__dirname, '..', '..');
const HISTORIES = path.join(__dirname, 'histories');

async function histories(): Promise<{ name: string; json: unknown }[]> {
  const files = (await readdir(HISTORIES)).filter((f) => f.endsWith('.json')).sort();
  return Promise.all(
    files.map(async (f) => ({ name: f, json: JSON.parse(await readFile(path.join(HISTORIES, f), 'utf8')) })),
  );
}

/** Copies workflows/ and shared/ and adds a local activity before the first plan: a change without patched(). */
async function bundleMutant(): Promise<string> {
  const dir = path.join(ROOT, '.keel', 'test', 'mutant');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await cp(path.join(ROOT, 'workflows'), path.join(dir, 'workflows'), { recursive: true });
  await cp(path.join(ROOT, 'shared'), path.join(dir, 'shared'), { recursive: true });
  const goalFile = path.join(dir, 'workflows', 'goal.ts');
  const source = await readFile(goalFile, 'utf8');
  const anchor = 'const proposal: ProposedPlan = await planner.planGoal(';
  if (!source.includes(anchor)) throw new Error(`mutation anchor not found in workflows/goal.ts: ${anchor}`);
  const mutated = source.replace(
    anchor,
    `await book.markStep({ goalId: goal.goalId, planVersion: 0, stepId: 'mutant', status: 'pending', eventType: 'mutant' });\n      ${anchor}`,
  );
  await writeFile(goalFile, mutated);
  const { code } = await bundleWorkflowCode({ workflowsPath: path.join(dir, 'workflows'), logger: silent });
  const out = path.join(dir, 'bundle.js');
  await writeFile(out, code);
  return out;
}

/** patched() ids recorded in a history: the payloads of its patch markers. */
function patchIds(history: any): string[] {
  const ids: string[] = [];
  for (const e of history.events ?? []) {
    const details = e.markerRecordedEventAttributes?.details ?? {};
    for (const payload of details['patch-data']?.payloads ?? []) {
      const decoded = JSON.parse(Buffer.from(payload.data, 'base64').toString());
      if (typeof decoded.id === 'string') ids.push(decoded.id);
    }
  }
  return ids;
}

const noop = () => undefined;
const silent = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };

test('there are recorded histories of each goal shape', async () => {
  const names = (await histories()).map((h) => h.name);
  expect(names).toEqual(
    expect.arrayContaining([
      'note-completed.json',
      'email-approved-with-edits.json',
      'email-rejected.json',
      'email-cancelled.json',
    ]),
  );
});

test('histories of every workflow generation are kept: no memory, memory as an activity, as a local activity', async () => {
  const generations = (await histories()).map((h) => patchIds(h.json).join(',') || '(none)');
  expect(new Set(generations)).toEqual(new Set(['(none)', 'keel-episodic-memory', 'keel-episodic-memory-local']));
});

test('every recorded history replays against the current workflow code', async () => {
  for (const h of await histories()) {
    await expect(
      Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath() } }, h.json),
    ).resolves.toBeUndefined();
  }
});

test('a changed workflow without patched() fails the same replay', async () => {
  const mutant = await bundleMutant();
  for (const h of await histories()) {
    await expect(Worker.runReplayHistory({ workflowBundle: { codePath: mutant } }, h.json)).rejects.toBeInstanceOf(
      DeterminismViolationError,
    );
  }
});
