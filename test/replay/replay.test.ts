/**
 * Recorded histories of finished goals must replay against the current
 * workflow code. The negative control replays them against a copy of the
 * workflow with one extra command in front, which must be refused: it proves
 * the check can fail, so a green run means something.
 */
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { bundleKeelWorkflows } from '../../workers/bundle';
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

/**
 * A workflow bundle whose goalWorkflow first sleeps, then runs the real one: a
 * change without patched() that adds a timer command before anything the
 * histories recorded. Built from an entry file of its own that imports the
 * real workflows, so it does not depend on the text of any workflow source.
 */
async function bundleMutant(): Promise<string> {
  const dir = path.join(ROOT, '.keel', 'test', 'mutant');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const entry = path.join(dir, 'index.ts');
  await writeFile(
    entry,
    [
      "import { sleep } from '@temporalio/workflow';",
      `import * as real from ${JSON.stringify(path.join(ROOT, 'workflows'))};`,
      'export async function goalWorkflow(...args: Parameters<typeof real.goalWorkflow>) {',
      '  await sleep(1);',
      '  return real.goalWorkflow(...args);',
      '}',
      '',
    ].join('\n'),
  );
  const { code } = await bundleKeelWorkflows({ workflowsPath: entry, logger: silent });
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

test('histories of every workflow generation are kept: no memory, memory as an activity, as a local activity, decisions answered once recorded, model budgets, replans, the lean path, the end in one activity', async () => {
  const generations = (await histories()).map((h) => patchIds(h.json).join(',') || '(none)');
  expect(new Set(generations)).toEqual(
    new Set([
      '(none)',
      'keel-episodic-memory',
      'keel-episodic-memory-local',
      'keel-decide-answers-when-recorded,keel-episodic-memory-local',
      // A goal started with a model configured: its model calls reserve budget; it stopped to raise it.
      'keel-budget-reservation,keel-decide-answers-when-recorded,keel-episodic-memory-local',
      // A goal with a policy pinned, planned by a model (recipient guard), replanned after a rejection with a comment.
      'keel-budget-reservation,keel-recipient-guard,keel-decide-answers-when-recorded,keel-replan-after-start,keel-episodic-memory-local',
      // The lean path: planning in a local activity, every older patch implied by this one (no marker each).
      'keel-lean-goal',
      // ... with decisions recorded by an activity once Temporal holds their acceptance.
      'keel-lean-goal,keel-decision-recorded-after-accept',
      // Its second step: the end recorded and remembered in one local activity; it implies the lean path.
      'keel-finish-goal',
    ]),
  );
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
