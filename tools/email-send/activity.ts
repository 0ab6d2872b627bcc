/** email.send: the irreversible step; exactly-once intent through the side-effect table (connectors/email.ts). */
import { Context } from '@temporalio/activity';
import { loadArtifact } from '../../state/artifacts';
import { parseAddress, upsertContact } from '../../state/entities';
import { implementTool } from '../runtime';
import { emailSend, messageIdSchema } from './spec';

/**
 * The thread a reply belongs to: the step's `inReplyTo`, else the draft's
 * (a draft written as a reply keeps `inReplyTo` and `references` in its
 * metadata). References lists the thread's earlier messages, ending with the
 * one answered, as RFC 5322 asks.
 */
function threadOf(inReplyTo: string | undefined, meta: Record<string, unknown>) {
  const parsed = messageIdSchema.safeParse(meta.inReplyTo);
  const parent = inReplyTo ?? (parsed.success ? parsed.data : undefined);
  if (!parent) return {};
  const earlier = Array.isArray(meta.references)
    ? meta.references.flatMap((r) => {
        const id = messageIdSchema.safeParse(r);
        return id.success ? [id.data] : [];
      })
    : [];
  return { inReplyTo: parent, references: [...earlier.filter((r) => r !== parent), parent] };
}

export const sendEmail = implementTool(emailSend, async ({ to, draft, inReplyTo }, step, deps) => {
  const artifact = await loadArtifact(deps.prisma, draft.ref);
  const meta = artifact.metadata as Record<string, unknown>;
  const subject = typeof meta.subject === 'string' ? meta.subject : artifact.title;
  const thread = threadOf(inReplyTo, meta);
  const ctx = Context.current();
  const beat = setInterval(() => ctx.heartbeat(), 1000);
  try {
    ctx.heartbeat();
    const sent = await deps.email.send({
      idempotencyKey: `${step.workflowId}:${step.stepId}`,
      goalId: step.goalId,
      stepId: step.stepId,
      to,
      subject,
      body: artifact.content,
      ...thread,
      onProgress: () => ctx.heartbeat(),
      signal: ctx.cancellationSignal,
    });
    // Whoever Keel writes to is someone the operator deals with.
    const recipient = parseAddress(to);
    if (recipient) await deps.prisma.$transaction((tx) => upsertContact(tx, recipient, { actor: 'keel' }));
    return {
      output: {
        preview: `Sent "${subject}" to ${to}`,
        to,
        subject,
        messageId: sent.messageId,
        transport: sent.transport,
        artifactId: artifact.id,
        humanEdited: artifact.humanEdited,
        delivery: sent.status,
        ...(thread.inReplyTo ? { inReplyTo: thread.inReplyTo } : {}),
      },
    };
  } finally {
    clearInterval(beat);
  }
});
