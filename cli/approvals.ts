/** `keel approvals …`: list (optionally grouped by kind), approve, reject, edit in $EDITOR. */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { APPROVAL_STATUSES } from '../shared/goal';
import { CliError, EXIT, seg, type KeelClient } from './client';
import type { Context } from './context';
import { editableFields, openEditor, readEdits, renderEditFile } from './editor';
import { indent, money, oneLine, print, printErr, printJson, span } from './format';
import { follow, withFollowFlags } from './goals';
import type { Approval, DecisionAnswer, Goal } from './types';

interface Group {
  kind: string;
  approvals: Approval[];
}

export function registerApprovalCommands(program: Command, ctx: Context): void {
  const approvals = program.command('approvals').description('what waits for your decision, and deciding it');

  approvals
    .command('list')
    .description('pending approvals, oldest first')
    .addOption(
      new Option('--status <status>', 'approvals in this status').choices(APPROVAL_STATUSES).default('pending'),
    )
    .addOption(new Option('--group-by <what>', 'group them, for deciding alike ones together').choices(['kind']))
    .option('--goal <goalId>', 'only this goal’s')
    .option('--json', 'the API’s answer as JSON')
    .action(async (o: { status: string; groupBy?: 'kind'; goal?: string; json?: boolean }) => {
      const client = ctx.client();
      const query = { status: o.status, goalId: o.goal, limit: 500 };
      if (o.groupBy) {
        const groups = await groupsByKind(client, query);
        if (o.json) return printJson({ groups });
        if (groups.length === 0) return print(`No ${o.status} approvals.`);
        for (const g of groups) {
          print(`${g.kind} (${g.approvals.length})`);
          for (const a of g.approvals) print(indent(approvalText(a), '  '));
        }
        return decideHint(groups.flatMap((g) => g.approvals));
      }
      const { approvals: list } = await client.get<{ approvals: Approval[] }>('/v1/approvals', query);
      if (o.json) return printJson({ approvals: list });
      if (list.length === 0) return print(`No ${o.status} approvals.`);
      for (const a of list) print(approvalText(a));
      decideHint(list);
    });

  withFollowFlags(
    approvals
      .command('approve')
      .description('approve as proposed')
      .argument('<approvalId>')
      .option('--comment <text>', 'a note kept with the decision')
      .option('--follow', 'then follow the goal until it finishes or waits again'),
  ).action(async (approvalId: string, o: { comment?: string; follow?: boolean; interval: number; timeout: number }) => {
    const goalId = o.follow ? (await findApproval(ctx.client(), approvalId)).goalId : undefined;
    const answer = await decide(ctx.client(), approvalId, {
      decision: 'approve',
      ...(o.comment !== undefined ? { comment: o.comment } : {}),
    });
    print(`approval ${answer.approvalId} ${answer.status}`);
    if (goalId) await follow(ctx, goalId, o);
  });

  approvals
    .command('reject')
    .description('say no; the reason is kept with the decision and given to the planner, which may try another way')
    .argument('<approvalId>')
    .requiredOption('--reason <text>', 'why not (required)')
    .action(async (approvalId: string, o: { reason: string }) => {
      if (!o.reason.trim()) throw new CliError('--reason must say why', EXIT.usage);
      const answer = await decide(ctx.client(), approvalId, { decision: 'reject', comment: o.reason });
      print(`approval ${answer.approvalId} ${answer.status}: ${o.reason}`);
    });

  withFollowFlags(
    approvals
      .command('edit')
      .description('change the proposal in $EDITOR (an email’s subject and body), then approve it with your changes')
      .argument('<approvalId>')
      .option('--comment <text>', 'a note kept with the decision')
      .option('--follow', 'then follow the goal until it finishes or waits again'),
  ).action(async (approvalId: string, o: { comment?: string; follow?: boolean; interval: number; timeout: number }) => {
    const client = ctx.client();
    const approval = await findApproval(client, approvalId);
    const tool = approval.shown?.tool ?? (await toolOfStep(client, approval));
    const editable = await editableFields(tool);
    if (editable.length === 0) {
      throw new CliError(
        `approval ${approvalId} (${tool ?? approval.stepId}) has nothing to edit: approve or reject it`,
      );
    }
    const proposed = approval.proposed ?? {};
    const dir = mkdtempSync(path.join(tmpdir(), 'keel-edit-'));
    const file = path.join(dir, `${approvalId.replace(/[^A-Za-z0-9_-]/g, '_')}.txt`);
    let result: ReturnType<typeof readEdits>;
    try {
      writeFileSync(file, renderEditFile({ approvalId, summary: approval.summary, proposed, editable }), {
        mode: 0o600,
      });
      openEditor(file, process.env);
      result = readEdits(readFileSync(file, 'utf8'), proposed, editable);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    if (result.kind === 'unchanged') throw new CliError('aborted: the file is unchanged; nothing was decided');
    if (result.kind === 'empty') throw new CliError('aborted: the file is empty; nothing was decided');
    if (result.kind === 'invalid') throw new CliError(`aborted: ${result.problem}; nothing was decided`);
    const answer = await decide(client, approvalId, {
      decision: 'approve',
      edits: result.edits,
      ...(o.comment !== undefined ? { comment: o.comment } : {}),
      // Bound to the version the editor showed: if the proposal changed meanwhile, the API refuses (409).
      ...(approval.shownHash ? { shownHash: approval.shownHash } : {}),
    });
    print(
      `approval ${answer.approvalId} ${answer.status} with your changes to ${Object.keys(result.edits).join(' and ')}`,
    );
    if (o.follow) await follow(ctx, approval.goalId, o);
  });
}

/** One decision, with an Idempotency-Key of its own so a retry of this request is the same decision. */
function decide(
  client: KeelClient,
  approvalId: string,
  body: { decision: 'approve' | 'reject'; edits?: Record<string, string>; comment?: string; shownHash?: string },
): Promise<DecisionAnswer> {
  return client.post<DecisionAnswer>(`/v1/approvals/${seg(approvalId)}/decision`, body, {
    'idempotency-key': randomUUID(),
    // Recorded with the decision: it came from the command line.
    'x-keel-channel': 'cli',
  });
}

/** A pending approval by id, or an error saying it is not waiting (any more). */
async function findApproval(client: KeelClient, approvalId: string): Promise<Approval> {
  const { approvals } = await client.get<{ approvals: Approval[] }>('/v1/approvals', { status: 'pending', limit: 500 });
  const found = approvals.find((a) => a.approvalId === approvalId);
  if (!found) throw new CliError(`approval ${approvalId} is not waiting for a decision (decided, expired, or unknown)`);
  return found;
}

/** The tool of an approval's step, for an API whose approvals do not name it. */
async function toolOfStep(client: KeelClient, approval: Approval): Promise<string | undefined> {
  const goal = await client.get<Goal>(`/v1/goals/${seg(approval.goalId)}`);
  return goal.plan.steps.find((s) => s.id === approval.stepId)?.tool;
}

/**
 * Groups from the API (`groupBy=kind`); an API that does not group yet answers
 * a flat list, grouped here by the tool of each approval's step.
 */
async function groupsByKind(client: KeelClient, query: Record<string, string | number | undefined>): Promise<Group[]> {
  const answer = await client.get<{ groups?: Group[]; approvals?: Approval[] }>('/v1/approvals', {
    ...query,
    groupBy: 'kind',
  });
  if (answer.groups) return answer.groups;
  const list = answer.approvals ?? [];
  const groups = new Map<string, Approval[]>();
  for (const a of list) {
    const kind = a.shown?.tool ?? (await toolOfStep(client, a)) ?? 'other';
    groups.set(kind, [...(groups.get(kind) ?? []), a]);
  }
  return [...groups].map(([kind, approvals]) => ({ kind, approvals }));
}

function approvalText(a: Approval): string {
  const now = Date.now();
  const facts = [
    `goal ${a.goalId}`,
    `step ${a.stepId}`,
    `asked ${span(a.createdAt, now)} ago`,
    ...(a.status === 'pending' && a.expiresAt
      ? [new Date(a.expiresAt).getTime() > now ? `expires in ${span(a.expiresAt, now)}` : 'expiring']
      : []),
    ...(a.decidedAt ? [`${a.status} by ${a.actor ?? '?'} ${span(a.decidedAt, now)} ago`] : []),
    ...(a.escalated ? ['escalated'] : []),
    ...(a.shown?.risk ? [`risk ${a.shown.risk}`] : []),
    ...(typeof a.shown?.costSoFarUsd === 'number' ? [`cost so far ${money(a.shown.costSoFarUsd)}`] : []),
  ];
  const lines = [`${a.approvalId}  ${a.summary}`, `  ${facts.join(' · ')}`];
  if (a.rationale) lines.push(`  why: ${oneLine(a.rationale, 160)}`);
  if (a.comment) lines.push(`  comment: ${oneLine(a.comment, 160)}`);
  return lines.join('\n');
}

function decideHint(list: Approval[]): void {
  if (!list.some((a) => a.status === 'pending')) return;
  printErr('Decide with: keel approvals approve|edit <id>, or keel approvals reject <id> --reason "…"');
}
