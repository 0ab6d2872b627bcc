/** `keel goal …`: start (and follow), follow, show, list, explain, plans, cancel. */
import { Option, type Command } from 'commander';
import { GOAL_STATUSES } from '../shared/goal';
import { EXIT, seg } from './client';
import { jsonObject, nonNegativeNumber, positiveInt, positiveNumber, type Context } from './context';
import { followGoal, printDecisionHelp, type FollowOptions } from './follow';
import { fields, indent, money, oneLine, print, printJson, table, when } from './format';
import type { Approval, Explanation, Goal, GoalSummary, PlanHistory, StartAnswer } from './types';

interface FollowFlags {
  interval: number;
  timeout: number;
}

const followOptions = (o: FollowFlags): FollowOptions => ({
  intervalMs: o.interval,
  timeoutMs: o.timeout * 1000,
  quietHintMs: 30_000,
});

/** --interval and --timeout, for every command that follows a goal. */
export function withFollowFlags(cmd: Command): Command {
  return cmd
    .option('--interval <ms>', 'how often to look at the goal, in milliseconds', positiveInt, 500)
    .option('--timeout <seconds>', 'stop following after this long (0: never)', nonNegativeNumber, 0);
}

/** Follows a goal and sets the exit code: 1 when it failed or was cancelled. */
export async function follow(ctx: Context, goalId: string, o: FollowFlags): Promise<void> {
  const end = await followGoal(ctx.client(), goalId, followOptions(o));
  if (end.reason === 'finished' && end.goal.status !== 'completed') process.exitCode = EXIT.failed;
}

export function registerGoalCommands(program: Command, ctx: Context): void {
  const goal = program.command('goal').description('start goals, follow them, read what they did');

  withFollowFlags(
    goal
      .command('start')
      .description('start a goal and follow it until it finishes or waits for your approval')
      .argument('<title>', 'what to do, e.g. "Email ada@example.com a thank-you note for the referral"')
      .option('--kind <kind>', 'the goal kind (e.g. email); the planner infers it when absent')
      .option('--description <text>', 'more detail for the planner')
      .option('--input <json>', 'the goal input, a JSON object', jsonObject)
      .option('--to <address>', 'the recipient (sets input.to)')
      .option('--budget <usd>', 'the budget in US dollars (default: the engine’s KEEL_BUDGET_USD)', positiveNumber)
      .option('--request-id <id>', 'an id of your own: the same id twice starts one goal')
      .option('--no-follow', 'print the goal id and return at once'),
  ).action(
    async (
      title: string,
      o: FollowFlags & {
        kind?: string;
        description?: string;
        input?: Record<string, unknown>;
        to?: string;
        budget?: number;
        requestId?: string;
        follow: boolean;
      },
    ) => {
      const input = o.to !== undefined ? { ...o.input, to: o.to } : o.input;
      const started = await ctx.client().post<StartAnswer>('/v1/goals', {
        title,
        ...(o.description !== undefined ? { description: o.description } : {}),
        ...(o.kind !== undefined ? { kind: o.kind } : {}),
        ...(input !== undefined ? { input } : {}),
        ...(o.budget !== undefined ? { budgetUsd: o.budget } : {}),
        ...(o.requestId !== undefined ? { requestId: o.requestId } : {}),
      });
      print(`goal ${started.goalId} started: ${title}`);
      if (!o.follow) {
        print(`Follow it with: keel goal follow ${started.goalId}`);
        return;
      }
      await follow(ctx, started.goalId, o);
    },
  );

  withFollowFlags(
    goal
      .command('follow')
      .description('follow a goal until it finishes or waits for your approval')
      .argument('<goalId>'),
  ).action(async (goalId: string, o: FollowFlags) => follow(ctx, goalId, o));

  goal
    .command('show')
    .description('a goal: status, plan and steps, approvals, cost')
    .argument('<goalId>')
    .option('--json', 'the API’s answer as JSON')
    .action(async (goalId: string, o: { json?: boolean }) => {
      const g = await ctx.client().get<Goal>(`/v1/goals/${seg(goalId)}`);
      if (o.json) return printJson(g);
      printGoal(g);
    });

  goal
    .command('list')
    .description('goals, newest first')
    .addOption(new Option('--status <status>', 'only goals in this status').choices(GOAL_STATUSES))
    .option('--limit <n>', 'at most this many', positiveInt, 20)
    .option('--json', 'the API’s answer as JSON')
    .action(async (o: { status?: string; limit: number; json?: boolean }) => {
      const { goals } = await ctx
        .client()
        .get<{ goals: GoalSummary[] }>('/v1/goals', { status: o.status, limit: o.limit });
      if (o.json) return printJson({ goals });
      if (goals.length === 0) return print(o.status ? `No ${o.status} goals.` : 'No goals yet.');
      for (const line of table(
        ['GOAL', 'STATUS', 'COST', 'CREATED', 'TITLE'],
        goals.map((g) => [g.goalId, g.status, money(g.cost?.usd), when(g.createdAt), oneLine(g.title, 70)]),
      )) {
        print(line);
      }
    });

  goal
    .command('explain')
    .description('what the goal did and why: each action, its reasons, inputs, model, memory, approvals, cost')
    .argument('<goalId>')
    .option('--json', 'the API’s answer as JSON')
    .action(async (goalId: string, o: { json?: boolean }) => {
      const e = await ctx.client().get<Explanation>(`/v1/goals/${seg(goalId)}/explain`);
      if (o.json) return printJson(e);
      printExplanation(e);
    });

  goal
    .command('plans')
    .description('every plan version: who made it, why it was replaced, what changed')
    .argument('<goalId>')
    .option('--json', 'the API’s answer as JSON')
    .action(async (goalId: string, o: { json?: boolean }) => {
      const h = await ctx.client().get<PlanHistory>(`/v1/goals/${seg(goalId)}/plans`);
      if (o.json) return printJson(h);
      printPlans(h);
    });

  goal
    .command('cancel')
    .description('cancel a goal: its committed work is undone, then it ends cancelled')
    .argument('<goalId>')
    .option('--reason <text>', 'why, for the goal’s events')
    .action(async (goalId: string, o: { reason?: string }) => {
      const res = await ctx
        .client()
        .post<{ status?: string }>(
          `/v1/goals/${seg(goalId)}/cancel`,
          o.reason !== undefined ? { reason: o.reason } : {},
        );
      print(`goal ${goalId}: cancel requested${res?.status ? ` (${res.status})` : ''}`);
    });
}

function printGoal(g: Goal): void {
  print(g.title);
  print(`  goal     ${g.goalId}`);
  print(`  status   ${g.status}`);
  if (g.kind) print(`  kind     ${g.kind}`);
  print(`  cost     ${costText(g.cost)}`);
  print(`  created  ${when(g.createdAt)}   updated ${when(g.updatedAt)}`);
  if (g.plan?.steps.length) {
    print();
    print(`Plan v${g.plan.version}:`);
    for (const line of table(
      ['STEP', 'STATUS', 'TOOL', 'TITLE'],
      g.plan.steps.map((s) => [s.id, s.status, s.tool, s.title + (s.requiresApproval ? ' (asks first)' : '')]),
    )) {
      print(`  ${line}`);
    }
  }
  if (g.approvals?.length) {
    print();
    print('Approvals:');
    for (const a of g.approvals) {
      const decided = a.decidedAt ? ` by ${a.actor ?? '?'} at ${when(a.decidedAt)}` : '';
      print(`  ${a.approvalId}  ${a.status}${decided}  ${a.summary}`);
      if (a.comment) print(`    comment: ${oneLine(a.comment, 160)}`);
    }
  }
  if (g.outcome !== undefined && g.outcome !== null) {
    print();
    print(`Outcome: ${oneLine(g.outcome, 300)}`);
  }
  if (g.error !== undefined && g.error !== null) {
    print();
    print(`Error: ${oneLine(g.error, 300)}`);
  }
  if (g.status === 'awaiting_approval') printDecisionHelp(g.approvals.filter((a) => a.status === 'pending'));
}

function costText(c: Goal['cost']): string {
  if (!c) return money(0);
  const tokens =
    c.inputTokens || c.outputTokens ? ` (${c.inputTokens ?? 0} tokens in, ${c.outputTokens ?? 0} out)` : '';
  return money(c.usd) + tokens;
}

/** The explanation in sentences: one paragraph per action. */
function printExplanation(e: Explanation): void {
  print(`${e.title}`);
  print(`Goal ${e.goalId} is ${e.status.replace(/_/g, ' ')}; it cost ${costText(e.cost)}.`);
  for (const p of e.plans ?? []) {
    const version = typeof p.planVersion === 'number' ? ` v${p.planVersion}` : '';
    const verb = p.type === 'plan.accepted' ? 'accepted' : p.type === 'plan.rejected' ? 'refused' : p.type;
    const why = Array.isArray(p.problems) && p.problems.length ? ` because ${p.problems.map(String).join('; ')}` : '';
    const rationale = typeof p.rationale === 'string' && p.rationale ? `: ${oneLine(p.rationale, 200)}` : '';
    print(`Plan${version} ${verb}${p.actor ? ` (by ${p.actor})` : ''} at ${when(p.at)}${why}${rationale}`);
  }
  const versions = new Set(e.actions.map((a) => a.planVersion));
  if (e.actions.length === 0) {
    print();
    print('No actions yet.');
  }
  let n = 0;
  for (const a of e.actions) {
    n += 1;
    print();
    const plan = versions.size > 1 ? ` [plan v${a.planVersion}]` : '';
    print(`${n}. ${a.what} — ${a.status.replace(/_/g, ' ')}${plan}`);
    const lines: string[] = [];
    if (a.why) lines.push(`Why: ${a.why}`);
    const inputs = fields(withReferences(a.inputs));
    if (inputs) lines.push(`With: ${inputs}`);
    if (a.model) lines.push(`Model: ${a.model}${a.promptHash ? `, prompt ${a.promptHash.slice(0, 16)}` : ''}`);
    else if (a.promptHash) lines.push(`Prompt: ${a.promptHash.slice(0, 16)}`);
    const memory: { id: string; text?: string }[] | undefined = a.memory ?? a.memoryUsed?.map((id) => ({ id }));
    if (memory?.length) {
      lines.push(`Memory used (${memory.length}):`);
      for (const m of memory) lines.push(`  - ${m.text ? `"${oneLine(m.text, 120)}" (${m.id})` : m.id}`);
    }
    for (const ap of a.approvals ?? []) lines.push(approvalSentence(ap));
    for (const s of a.sideEffects ?? []) {
      const receipt = fields(scalars(s.result), 50);
      lines.push(`Side effect: ${s.kind} ${s.status} (key ${s.idempotencyKey}${receipt ? `; ${receipt}` : ''})`);
    }
    if (typeof a.output?.preview === 'string') lines.push(`Result: ${oneLine(a.output.preview, 160)}`);
    if (a.cost && a.cost.usd > 0) lines.push(`Cost: ${money(a.cost.usd)}`);
    if (lines.length) print(indent(lines.join('\n'), '   '));
  }
}

/** Inputs with each reference to an earlier step (`{fromStep: "draft"}`) in words. */
function withReferences(inputs: Record<string, unknown> | null | undefined): Record<string, unknown> | undefined {
  if (!inputs) return undefined;
  return Object.fromEntries(
    Object.entries(inputs).map(([k, v]) => {
      const from = (v as { fromStep?: unknown } | null)?.fromStep;
      return [k, typeof from === 'string' && Object.keys(v as object).length === 1 ? `(from step ${from})` : v];
    }),
  );
}

/** A receipt's plain values (ids, statuses), without the lists and objects a person does not read. */
function scalars(value: unknown): Record<string, unknown> | undefined {
  if (!value || typeof value !== 'object') return undefined;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v === null || typeof v !== 'object'));
}

function approvalSentence(a: Approval): string {
  if (a.status === 'pending') return `Approval: waiting for you (${a.approvalId}): ${a.summary}`;
  const who = a.actor ? ` by ${a.actor}` : '';
  const at = a.decidedAt ? ` at ${when(a.decidedAt)}` : '';
  const through = a.channel ? ` through ${a.channel}` : '';
  const edited =
    a.edits && typeof a.edits === 'object' && Object.keys(a.edits).length
      ? `, with edits to ${Object.keys(a.edits).join(' and ')}`
      : '';
  const comment = a.comment ? `, saying "${oneLine(a.comment, 160)}"` : '';
  return `Approval: ${a.status}${who}${at}${through}${edited}${comment}; they were shown: ${a.summary}`;
}

function printPlans(h: PlanHistory): void {
  if (h.versions.length === 0) return print(`Goal ${h.goalId} has no plan yet.`);
  for (const v of h.versions) {
    const by = [v.generatedBy, v.model].filter(Boolean).join(', ');
    print(`Plan v${v.version} — ${v.status}${by ? ` (${by})` : ''}, ${when(v.at)}`);
    if (v.rationale) print(`  why: ${oneLine(v.rationale, 200)}`);
    for (const p of v.problems ?? []) print(`  refused: ${p}`);
    if (v.replannedBecause) {
      const r = v.replannedBecause;
      print(
        `  replaced because ${r.cause} at step ${r.stepId} (${r.tool})${r.actor ? ` by ${r.actor}` : ''}: ${r.note}`,
      );
    }
    if (v.diff) {
      const parts = [
        ...v.diff.added.map((id) => `+${id}`),
        ...v.diff.removed.map((id) => `-${id}`),
        ...v.diff.changed.map((c) => `~${c.id} (${c.fields.join(', ')})`),
      ];
      print(`  changes: ${parts.length ? parts.join(' ') : 'none'}`);
    }
    for (const s of v.steps) {
      const deps = s.dependsOn?.length ? ` after ${s.dependsOn.join(', ')}` : '';
      print(`  - ${s.id}: ${s.title} (${s.tool})${deps}`);
    }
  }
}
