/**
 * Follows a goal: polls GET /v1/goals/:id and prints what changed (the goal's
 * status, a new plan, each step's status, each approval) until the goal
 * finishes or waits for the operator, then says how to decide.
 */
import { seg, type KeelClient } from './client';
import { money, oneLine, print, table } from './format';
import type { Approval, Goal } from './types';

const FINISHED = new Set(['completed', 'failed', 'cancelled']);

export interface FollowOptions {
  /** Between polls. */
  intervalMs: number;
  /** Give up after this long (0: never). */
  timeoutMs: number;
  /** After this long without any change, say once what might be wrong. */
  quietHintMs?: number;
}

export type FollowEnd = { goal: Goal; reason: 'finished' | 'awaiting_approval' | 'timeout' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Prints the goal's progress as it happens; resolves when it finishes, waits for approval, or the timeout passes. */
export async function followGoal(client: KeelClient, goalId: string, opts: FollowOptions): Promise<FollowEnd> {
  const started = Date.now();
  const stamp = () => `[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s]`;
  const say = (line: string) => print(`${stamp()} ${line}`);
  let status: string | undefined;
  let planVersion: number | undefined;
  const steps = new Map<string, string>();
  const approvals = new Map<string, string>();
  let lastChange = Date.now();
  let hinted = false;

  for (;;) {
    const goal = await client.get<Goal>(`/v1/goals/${seg(goalId)}`);
    let changed = false;
    if (goal.plan && goal.plan.steps.length > 0 && goal.plan.version !== planVersion) {
      planVersion = goal.plan.version;
      say(`plan v${planVersion}: ${goal.plan.steps.length} step${goal.plan.steps.length === 1 ? '' : 's'}`);
      for (const s of goal.plan.steps) {
        print(`         - ${s.title} (${s.tool}${s.requiresApproval ? ', asks you first' : ''})`);
      }
      changed = true;
    }
    if (goal.status !== status) {
      say(status ? `goal ${status} → ${goal.status}` : `goal ${goal.status}`);
      status = goal.status;
      changed = true;
    }
    for (const s of goal.plan?.steps ?? []) {
      const key = `${goal.plan.version}:${s.id}`;
      if (steps.get(key) === s.status) continue;
      steps.set(key, s.status);
      if (s.status === 'pending') continue;
      say(`step ${s.title}: ${s.status}${stepDetail(s.status, s.output, s.error)}`);
      changed = true;
    }
    for (const a of goal.approvals ?? []) {
      if (approvals.get(a.approvalId) === a.status) continue;
      approvals.set(a.approvalId, a.status);
      say(
        a.status === 'pending'
          ? `approval ${a.approvalId} requested: ${a.summary}`
          : `approval ${a.approvalId} ${a.status}${a.actor ? ` by ${a.actor}` : ''}${a.comment ? ` ("${oneLine(a.comment, 80)}")` : ''}`,
      );
      changed = true;
    }
    if (changed) lastChange = Date.now();

    if (FINISHED.has(goal.status)) {
      const cost = goal.cost ? `, cost ${money(goal.cost.usd)}` : '';
      say(`goal ${goal.status}${cost}${goal.error ? `: ${oneLine(errorText(goal.error), 200)}` : ''}`);
      return { goal, reason: 'finished' };
    }
    if (goal.status === 'awaiting_approval') {
      printDecisionHelp(goal.approvals.filter((a) => a.status === 'pending'));
      return { goal, reason: 'awaiting_approval' };
    }
    if (opts.timeoutMs > 0 && Date.now() - started >= opts.timeoutMs) {
      say(`still ${goal.status} after ${Math.round(opts.timeoutMs / 1000)} s; stopped following (the goal goes on)`);
      print(`Follow it again with: keel goal follow ${goal.goalId}`);
      return { goal, reason: 'timeout' };
    }
    if (!hinted && opts.quietHintMs && Date.now() - lastChange >= opts.quietHintMs) {
      hinted = true;
      say(
        `nothing has changed for ${Math.round(opts.quietHintMs / 1000)} s: is a worker running? (\`npm start\` runs one)`,
      );
    }
    await sleep(opts.intervalMs);
  }
}

function stepDetail(status: string, output: Record<string, unknown> | undefined, error: unknown): string {
  if (status === 'failed' && error) return ` (${oneLine(errorText(error), 160)})`;
  if (status === 'completed' && typeof output?.preview === 'string') return ` — ${oneLine(output.preview, 80)}`;
  return '';
}

function errorText(error: unknown): string {
  if (typeof error === 'string') return error;
  const e = error as { message?: unknown; reason?: unknown };
  return typeof e?.message === 'string' ? e.message : typeof e?.reason === 'string' ? e.reason : JSON.stringify(error);
}

/** Each pending approval with the commands that decide it. */
export function printDecisionHelp(pending: Approval[]): void {
  if (pending.length === 0) return;
  print();
  print(pending.length === 1 ? 'Waiting for your decision:' : `Waiting for ${pending.length} decisions:`);
  for (const a of pending) {
    print(`  ${a.approvalId}  ${a.summary}`);
    if (a.rationale) print(`    why: ${oneLine(a.rationale, 160)}`);
  }
  const id = pending.length === 1 ? pending[0].approvalId : '<approvalId>';
  print();
  print('Decide with:');
  for (const line of table(
    ['', ''],
    [
      [`keel approvals approve ${id}`, 'to approve it as proposed'],
      [`keel approvals edit ${id}`, 'to change it in $EDITOR, then approve'],
      [`keel approvals reject ${id} --reason "…"`, 'to say no (the reason goes to the planner)'],
    ],
  ).slice(1)) {
    print(`  ${line}`);
  }
}
