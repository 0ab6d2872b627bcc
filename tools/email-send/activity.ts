/** email.send: the irreversible step; exactly-once intent through the side-effect table (connectors/email.ts). */
import { Context } from '@temporalio/activity';
import { loadArtifact } from '../../state/artifacts';
import { parseAddress, upsertContact } from '../../state/entities';
import { implementTool } from '../runtime';
import { emailSend } from './spec';

export const sendEmail = implementTool(emailSend, async ({ to, draft }, step, deps) => {
  const artifact = await loadArtifact(deps.prisma, draft.ref);
  const meta = artifact.metadata as Record<string, unknown>;
  const subject = typeof meta.subject === 'string' ? meta.subject : artifact.title;
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
      },
    };
  } finally {
    clearInterval(beat);
  }
});
