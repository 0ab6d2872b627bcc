/**
 * The tool specs, their schemas and the default policy are made once per
 * worker thread and handed to every later workflow (shared/once.ts,
 * preloaded by workers/bundle.ts), instead of being built again each time
 * the sandbox starts a workflow. A workflow that uses every spec and the
 * policy as goal workflows do must answer, on the worker's bundle, exactly
 * what the same calls answer outside the sandbox, a second time as the
 * first; and the second workflow must get its specs from the store, which a
 * bundle that does not preload it does not do (the check can fail).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { planOffline } from '../../planner/offline';
import type { PlanStep } from '../../shared/plan';
import { bundleKeelWorkflows } from '../../workers/bundle';
import { startTemporal } from '../helpers/temporal';
import { exerciseSpecs, specsWorkflow } from './fixtures/specs-workflow';

const FIXTURE = path.join(__dirname, 'fixtures', 'specs-workflow.ts');
const silent = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} };

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await startTemporal();
}, 120_000);
afterAll(async () => {
  await env?.teardown();
});

const goal = (title: string, kind: string, input: Record<string, unknown>) =>
  planOffline({ goalId: 'g1', title, kind, input, planVersion: 1, feedback: [] }).steps;

/** An email, a note and a plan naming a tool nobody has, as the workflow validates them. */
const PLANS: PlanStep[][] = [
  goal('Email ana@example.com about the invoice', 'email', { to: 'ana@example.com', purpose: 'the invoice' }),
  goal('Note the delivery', 'note', { text: 'Delivered on Monday.' }),
  [{ id: 'x', tool: 'fax.send', title: 'Fax it', rationale: '', inputs: {}, dependsOn: [] }],
];

/** Runs the fixture workflow twice, one after the other, on one worker of `code`: what each answered. */
async function twiceOn(code: string) {
  const taskQueue = `shared-specs-${randomBytes(4).toString('hex')}`;
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: { code } });
  return worker.runUntil(async () => {
    const run = (n: number) =>
      env.client.workflow.execute(specsWorkflow, { taskQueue, workflowId: `${taskQueue}-${n}`, args: [PLANS] });
    return [await run(1), await run(2)];
  });
}

test('every spec and the policy answer the same in the sandbox as outside it, the second workflow from the store', async () => {
  const outside = exerciseSpecs(PLANS) as { tools: unknown[]; plans: { problems: string[] }[] };
  // The probes reach both outcomes: every tool, plans that pass and a plan that does not.
  expect(outside.tools).toHaveLength(10);
  expect(outside.plans.map((p) => p.problems.length > 0)).toEqual([false, false, true]);

  const { code } = await bundleKeelWorkflows({ workflowsPath: FIXTURE, logger: silent });
  const [first, second] = await twiceOn(code);
  expect(first.error).toBeUndefined();
  expect(first.result).toEqual(outside);
  expect(second.error).toBeUndefined();
  expect(second.result).toEqual(outside);
  // The first workflow's modules made the values, zod itself among them (shared/lazy-zod.ts); the second's
  // were handed every one of them but zod, which they did not need: no schema was built again.
  expect(first.store.made).toBeGreaterThan(10);
  expect(first.store.keys).toContain('zod');
  expect(second.store.made).toBe(first.store.made);
  expect(second.store.reused - first.store.reused).toBe(first.store.made - 1);
});

test('without the preloaded store each workflow builds every spec again', async () => {
  const { code } = await bundleWorkflowCode({ workflowsPath: FIXTURE, logger: silent });
  const [first, second] = await twiceOn(code);
  expect(second.result).toEqual(first.result);
  expect(second.store).toMatchObject({ made: first.store.made, reused: 0 });
  expect(first.store.keys).not.toContain('zod');
});
