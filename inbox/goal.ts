/**
 * A goal in words: its explanation (each action: what, why, model and prompt
 * hash, memory, approvals, side effects, cost) and its timeline (the audit
 * events as sentences). Reads the same rows as GET /v1/goals/:id/events and
 * /explain.
 */
import type { Db } from '../db/prisma';
import { esc, timeOf, usd } from './html';

type Data = Record<string, unknown>;
const s = (v: unknown) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v));
const step = (d: Data) => `step <code>${esc(d.stepId)}</code>${d.tool ? ` (${esc(d.tool)})` : ''}`;
const by = (actor: string) => (actor && actor !== 'system' ? ` — by ${esc(actor)}` : '');

/** One audit event as a sentence (HTML, escaped). */
export function describeEvent(type: string, data: Data, actor: string): string {
  const end = (word: string) =>
    `The goal ${word}.${data.reason ? ` Reason: ${esc(s(data.reason))}.` : ''}${data.error ? ` Error: ${esc(s(data.error))}` : ''}`;
  switch (type) {
    case 'goal.created':
      return `The goal was created${by(actor)}.`;
    case 'goal.running':
      return `Plan version ${esc(data.planVersion)} started running.`;
    case 'goal.resumed':
      return 'Work resumed after a decision.';
    case 'goal.completed':
      return end('completed');
    case 'goal.failed':
      return end('failed');
    case 'goal.cancelled':
      return end('was cancelled');
    case 'goal.cancel_requested':
      return `Cancelling was requested${by(actor)}${data.reason ? `: ${esc(s(data.reason))}` : ''}.`;
    case 'goal.budget_raised':
      return `The budget was raised from ${esc(usd(data.from))} to ${esc(usd(data.budgetUsd))}${by(actor)}.`;
    case 'goal.reconciled':
      return `Temporal reported the run as ${esc(data.temporalStatus)}; the goal is now ${esc(data.goalStatus)}.`;
    case 'plan.accepted':
      return `Plan version ${esc(data.planVersion)} was accepted with ${Array.isArray(data.steps) ? data.steps.length : 0} steps: ${esc(s(data.rationale))}`;
    case 'plan.rejected':
      return `Plan version ${esc(data.planVersion)} was refused by the policy: ${esc(Array.isArray(data.problems) ? data.problems.join('; ') : '')}`;
    case 'plan.replanned':
      return `Keel made a new plan (version ${esc(data.planVersion)}) because ${data.cause === 'approval_rejected' ? 'an approval was rejected' : 'a step failed'}: ${esc(s(data.note))}`;
    case 'step.started':
      return `Started ${step(data)}${Number(data.attempt) > 1 ? `, attempt ${esc(data.attempt)}` : ''}.`;
    case 'step.completed':
      return `Finished ${step(data)}${data.model ? ` with model ${esc(data.model)}` : ''}, cost ${esc(usd(data.costUsd))}.`;
    case 'step.failed':
    case 'step.cancelled':
    case 'step.skipped':
      return `${step(data).replace(/^s/, 'S')} ${type.slice(5)}${data.error ? `: ${esc(s(data.error))}` : '.'}`;
    case 'step.compensated':
      return `${step(data).replace(/^s/, 'S')} was undone: ${esc(s(data.reason))}`;
    case 'approval.requested':
      return `Keel asked for approval: ${esc(s(data.summary))}`;
    case 'approval.approved':
    case 'approval.rejected':
      return `The approval was ${type.slice(9)}${by(actor)}${data.edited ? ', with edits' : ''}${data.comment ? `: “${esc(s(data.comment))}”` : '.'}`;
    case 'approval.escalated':
      return 'Nobody had decided yet: a reminder was sent.';
    case 'approval.expired':
      return 'The approval expired; the policy decided.';
    case 'approval.cancelled':
      return 'The approval was withdrawn.';
    case 'memory.feedback':
      return `Memory learned from the ${esc(data.outcome)} decision (${esc(data.memories)} memories).`;
    case 'memory.remembered':
      return `Keel remembered a ${esc(data.kind)} about ${esc(data.subject)}.`;
    case 'artifact.created': {
      const a = (data.artifact ?? {}) as Data;
      return `Keel wrote a ${esc(a.kind ?? 'document')}: “${esc(s(a.title))}”.`;
    }
    case 'artifact.status_changed':
      return `A document became ${esc(data.status)}: ${esc(s(data.reason))}`;
    default:
      return `${esc(type.replace(/[._]/g, ' '))}${by(actor)}.`;
  }
}

interface ApprovalRow {
  stepId: string;
  status: string;
  decision: string | null;
  actor: string | null;
  channel: string | null;
  comment: string | null;
  edits: unknown;
  decidedAt: Date | null;
  summary: string;
}

function approvalWords(a: ApprovalRow): string {
  if (!a.decidedAt) return `Waiting for approval: ${esc(a.summary)} (${esc(a.status)}).`;
  const edits = a.edits && typeof a.edits === 'object' ? Object.keys(a.edits) : [];
  return `${a.status === 'approved' ? 'Approved' : a.status === 'rejected' ? 'Rejected' : esc(a.status)} by ${esc(a.actor ?? 'someone')}${a.channel ? ` through ${esc(a.channel)}` : ''} at ${timeOf(a.decidedAt)}${edits.length ? `, with edits to ${esc(edits.join(', '))}` : ''}${a.comment ? `: “${esc(a.comment)}”` : '.'}`;
}

/** The goal page's body, or undefined when the goal does not exist. */
export async function goalBody(prisma: Db, goalId: string): Promise<{ title: string; html: string } | undefined> {
  const goal = await prisma.goal.findUnique({ where: { id: goalId } });
  if (!goal) return undefined;
  const [steps, approvals, effects, events] = await Promise.all([
    prisma.step.findMany({ where: { goalId }, orderBy: [{ planVersion: 'asc' }, { position: 'asc' }] }),
    prisma.approval.findMany({ where: { goalId }, orderBy: { createdAt: 'asc' } }),
    prisma.sideEffect.findMany({ where: { goalId }, orderBy: { createdAt: 'asc' } }),
    prisma.event.findMany({ where: { goalId }, orderBy: { seq: 'asc' } }),
  ]);
  const ids = [...new Set(steps.flatMap((st) => st.memoryIds))];
  const memories = ids.length
    ? await prisma.memoryItem.findMany({ where: { id: { in: ids } }, select: { id: true, text: true } })
    : [];
  const text = new Map(memories.map((m) => [m.id, m.text]));

  const actions = steps
    .map((st) => {
      const used = st.memoryIds.map(
        (id) => `<li>${text.has(id) ? `${esc(text.get(id))} ` : ''}<span class="meta">(${esc(id)})</span></li>`,
      );
      const decided = approvals.filter((a) => a.stepId === st.stepId).map((a) => `<li>${approvalWords(a)}</li>`);
      const sides = effects
        .filter((e) => e.stepId === st.stepId)
        .map(
          (e) =>
            `<li>${esc(e.kind)}: ${esc(e.status)} after ${esc(e.attempts)} attempt${e.attempts === 1 ? '' : 's'} (idempotency key <code>${esc(e.idempotencyKey)}</code>)</li>`,
        );
      return `<li><h3>${esc(st.title)} <span class="meta">(${esc(st.tool)}, plan ${esc(st.planVersion)}): ${esc(st.status)}</span></h3>
<p><strong>Why:</strong> ${esc(st.rationale)}</p>
<p>${st.model ? `Model ${esc(st.model)}` : 'No model'}${st.promptHash ? `, prompt hash <code title="${esc(st.promptHash)}">${esc(st.promptHash.slice(0, 12))}…</code>` : ''}; cost ${esc(usd(st.costUsd))}.</p>
${used.length ? `<p>What it relied on from memory:</p><ul>${used.join('')}</ul>` : ''}
${decided.length ? `<ul>${decided.join('')}</ul>` : ''}
${sides.length ? `<p>Effects outside Keel:</p><ul>${sides.join('')}</ul>` : ''}</li>`;
    })
    .join('\n');
  const timeline = events
    .map((e) => `<li>${timeOf(e.at)} ${describeEvent(e.type, (e.data ?? {}) as Data, e.actor)}</li>`)
    .join('\n');
  const html = `<p><a href="/inbox">← Back to the inbox</a></p>
<h1>${esc(goal.title)}</h1>
<p id="goal-status">This goal is <strong>${esc(goal.status.replace('_', ' '))}</strong>. It has cost ${esc(usd(goal.costUsd))} so far (${esc(goal.inputTokens)} input and ${esc(goal.outputTokens)} output tokens).</p>
<h2>What Keel did and why</h2>
${actions ? `<ol>${actions}</ol>` : '<p>No plan yet.</p>'}
<h2>Timeline</h2>
<ol class="timeline">${timeline}</ol>`;
  return { title: goal.title, html };
}
