/** email.draft: writes the draft as an artifact. Offline, it fills a plain template and says so. */
import { createHash } from 'node:crypto';
import { cut } from '../../shared/text';
import { preview, saveArtifact } from '../../state/artifacts';
import { contactSubject, parseAddress } from '../../state/entities';
import { OFFLINE_LABEL, implementTool, stableId, textOf } from '../runtime';
import { emailDraft } from './spec';

/** A subject line stays within what mail clients show (RFC 5322 recommends 78 characters). */
const SUBJECT_MAX = 78;

export const draftEmail = implementTool(emailDraft, async ({ to, purpose, context }, step, deps) => {
  const known = context && context.items > 0 ? await textOf(deps.prisma, context) : '';
  const name = to.split('@')[0].split(/[._-]/)[0];
  const greeting = name ? name[0].toUpperCase() + name.slice(1) : 'there';
  const subject =
    purpose
      .replace(/^(e-?mail|write to|reply to|send)\s+\S+@\S+\s*/i, '')
      .replace(/^(an?|the)\s+/i, '')
      .trim() || purpose;
  const first = String.fromCodePoint(subject.codePointAt(0) ?? 32);
  const body = [
    `Hi ${greeting},`,
    '',
    `${first.toUpperCase()}${subject.slice(first.length)}${/[.!?]$/.test(subject) ? '' : '.'}`,
    '',
    known ? `For reference, what we have on record:\n${known}\n` : '',
    'Best regards,',
    deps.operatorName,
    '',
    `-- drafted by Keel, ${OFFLINE_LABEL}`,
  ]
    .filter((line, i, all) => !(line === '' && all[i - 1] === ''))
    .join('\n');
  const subjectLine = cut(subject, SUBJECT_MAX);
  const ref = await saveArtifact(
    deps.prisma,
    {
      goalId: step.goalId,
      stepId: step.stepId,
      kind: 'draft',
      title: subjectLine,
      content: body,
      subject: contactSubject(parseAddress(to)?.email ?? to),
      metadata: { to, subject: subjectLine, generatedBy: 'offline-drafter' },
    },
    stableId('draft', step.workflowId, step.planVersion, step.stepId),
  );
  return {
    output: { ref, preview: preview(body), to, subject: subjectLine },
    model: 'offline',
    promptHash: createHash('sha256').update(`${to}\n${purpose}\n${known}`).digest('hex'),
  };
});
