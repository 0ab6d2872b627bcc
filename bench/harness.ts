/**
 * What the engine benchmarks share (`bench:engine`, `bench:load`): the engine
 * they run (the tests' startEngine with the benchmark's database and the
 * bundle that holds the bare baselines), the goals both sides run, and the
 * percentiles they report. One place, so both benchmarks compare Keel with
 * the same bare workload.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { DefaultLogger, bundleWorkflowCode } from '@temporalio/worker';
import { bundleKeelWorkflows } from '../workers/bundle';
import { startEngine, type TestEngine } from '../test/helpers/engine';
import type { GoalResult } from '../workflows/types';
import { createGoal } from '../state/intake';
import {
  bareApprovalWorkflow,
  bareGoalWorkflow,
  bareRecordedEmailWorkflow,
  bareRecordedNoteWorkflow,
} from './workflows';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { resolveTemporalCli } = require('../scripts/temporal-cli.js') as {
  resolveTemporalCli(opts: { install: boolean }): Promise<{ path: string | null; source: string }>;
};

export const ROOT = path.resolve(__dirname, '..');

/** The p-th percentile (nearest rank) of ascending `sorted`; NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export interface Latencies {
  n: number;
  p50: number;
  p95: number;
  p99: number;
}

export function latencies(values: number[]): Latencies {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
  };
}

export const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : 'n/a');

export interface BenchEngine {
  engine: TestEngine;
  /** The Temporal CLI binary the dev server runs from, and where it was found. */
  cli: { path: string | null; source: string };
  /** The bundle of `workflowsPath`, for workers (in this process or a child). */
  bundlePath: string;
}

/**
 * Bundles the workflows of `workflowsPath` into .keel/bench/<name>.js: its path. A bundle with Keel's workflows
 * in it is built as the worker builds it (workers/bundle.ts, shared modules preloaded); `bare: true`, a bundle
 * of the bare baselines alone, as plain Temporal code.
 */
export async function bundleWorkflows(
  workflowsPath: string,
  name: string,
  opts: { bare?: boolean } = {},
): Promise<string> {
  const logger = new DefaultLogger('WARN');
  const { code } = opts.bare
    ? await bundleWorkflowCode({ workflowsPath, logger })
    : await bundleKeelWorkflows({ workflowsPath, logger });
  const bundlePath = path.join(ROOT, '.keel', 'bench', `${name}.js`);
  await mkdir(path.dirname(bundlePath), { recursive: true });
  await writeFile(bundlePath, code);
  return bundlePath;
}

/**
 * The engine the tests run, with the benchmark's database (dropped on close),
 * the memory store's production defaults, connector heartbeats of production
 * length, approval deadlines past the benchmark's end and a workflow bundle
 * (by default one that also holds the bare baselines). No worker is started:
 * the caller starts one in this process or in a child.
 */
export async function startBenchEngine(opts: {
  poolMax: number;
  /** The workflows workers run: default Keel's and the bare baselines in one bundle (bench/workflows). */
  workflowsPath?: string;
}): Promise<BenchEngine> {
  const cli = await resolveTemporalCli({ install: true });
  const workflowsPath = opts.workflowsPath ?? path.join(__dirname, 'workflows');
  const bundlePath = await bundleWorkflows(workflowsPath, `bundle-${path.basename(workflowsPath)}`);
  const engine = await startEngine({
    database: {
      serverUrl: process.env.KEEL_BENCH_PG ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
      prefix: 'keel_bench',
      poolMax: opts.poolMax,
    },
    temporal: { cliPath: cli.path, logLevel: 'error' },
    workflowBundlePath: bundlePath,
    actor: 'bench',
    operatorName: 'Bench Operator',
    // Production-length heartbeats; approvals that wait as long as the benchmark may keep them waiting.
    settings: { connectorHeartbeatMs: 30_000, approvalTimeoutMs: 600_000, escalationTimeoutMs: 600_000 },
    memory: { store: {} },
  });
  return { engine, cli, bundlePath };
}

/**
 * The two goal shapes both sides run. A note (recall, summarize, record) needs
 * no approval; an email (recall, draft, send, record) waits for a person
 * before its send.
 */
export type GoalShape = 'note' | 'email';

export function noteGoal(i: number) {
  return { title: `Summarize bench note ${i}`, text: `Bench note ${i}. Nothing to see.` };
}

export function emailGoal(i: number) {
  const to = `bench-${i}@example.com`;
  return { title: `Email ${to} a thank-you note for bench order ${i}`, to, purpose: `Thank you for bench order ${i}` };
}

/** Starts a Keel goal of `shape` through the HTTP API (202): its workflow id. */
export async function startKeelGoal(engine: TestEngine, shape: GoalShape, i: number): Promise<string> {
  const body =
    shape === 'note'
      ? { title: noteGoal(i).title, kind: 'note', input: { text: noteGoal(i).text } }
      : { title: emailGoal(i).title, kind: 'email', input: { to: emailGoal(i).to, purpose: emailGoal(i).purpose } };
  const res = await engine.http('POST', '/v1/goals', body);
  if (res.status !== 202) throw new Error(`POST /v1/goals answered ${res.status}: ${JSON.stringify(res.body)}`);
  return (res.body as { workflowId: string }).workflowId;
}

/** Waits for a Keel goal's workflow to end; anything but `completed` is an error. */
export async function keelGoalDone(client: Client, workflowId: string): Promise<void> {
  const result = (await client.workflow.getHandle(workflowId).result()) as GoalResult;
  if (result.status !== 'completed') throw new Error(`goal ${workflowId} ended ${result.status}: ${result.error}`);
}

/** Starts the bare baseline of `shape` on `taskQueue`: its workflow id. */
export async function startBareGoal(client: Client, taskQueue: string, shape: GoalShape, i: number): Promise<string> {
  const id = `bare-${randomBytes(6).toString('hex')}-${i}`;
  if (shape === 'note') {
    const n = noteGoal(i);
    await client.workflow.start(bareGoalWorkflow, {
      workflowId: id,
      taskQueue,
      args: [{ goalId: id, query: n.title, text: n.text }],
    });
  } else {
    const e = emailGoal(i);
    await client.workflow.start(bareApprovalWorkflow, {
      workflowId: id,
      taskQueue,
      args: [{ goalId: id, query: e.title, to: e.to, purpose: e.purpose }],
    });
  }
  return id;
}

/**
 * Stores a goal of `shape` as the API does (state/intake.ts) and starts the bare baseline that calls every
 * activity a Keel goal of that shape calls (bareRecordedNoteWorkflow, bareRecordedEmailWorkflow) on
 * `taskQueue`: its workflow id.
 */
export async function startBareRecordedGoal(
  engine: TestEngine,
  taskQueue: string,
  shape: GoalShape,
  i: number,
): Promise<string> {
  const stored = (title: string, kind: string, input: Record<string, unknown>) =>
    createGoal(engine.db.prisma, { title, kind, input }, 'bench').then((r) => r.goal);
  const { client } = engine.temporal;
  if (shape === 'note') {
    const n = noteGoal(i);
    const goal = await stored(n.title, 'note', { text: n.text });
    await client.workflow.start(bareRecordedNoteWorkflow, {
      workflowId: goal.workflowId,
      taskQueue,
      args: [{ goalId: goal.id, title: n.title, text: n.text }],
    });
    return goal.workflowId;
  }
  const e = emailGoal(i);
  const goal = await stored(e.title, 'email', { to: e.to, purpose: e.purpose });
  await client.workflow.start(bareRecordedEmailWorkflow, {
    workflowId: goal.workflowId,
    taskQueue,
    args: [{ goalId: goal.id, title: e.title, to: e.to, purpose: e.purpose }],
  });
  return goal.workflowId;
}

/** Waits for a bare baseline's workflow to end. */
export async function bareGoalDone(client: Client, workflowId: string): Promise<void> {
  await client.workflow.getHandle(workflowId).result();
}
