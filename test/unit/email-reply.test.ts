/**
 * Reply threading for email.send: a step (or its draft) that names the
 * message it answers sends In-Reply-To and References, which arrive at a real
 * SMTP server; a send without it is unchanged.
 */
import { defaultConfig } from '../../config';
import type { EmailConnector } from '../../connectors/email';
import type { MemoryService } from '../../memory/service';
import { saveArtifact } from '../../state/artifacts';
import { createToolActivities } from '../../tools/activities';
import { emailSend } from '../../tools/registry';
import { describeApproval } from '../../tools/spec';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { createTestEmail, createTestMemory } from '../helpers/engine';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp';
import { failureOf, goalWithSteps, runAttempt } from '../helpers/tool-goal';

let db: TestDatabase;
let memory: MemoryService;
let smtp: TestSmtpServer;
let email: EmailConnector;

beforeAll(async () => {
  [db, smtp] = await Promise.all([createTestDatabase(), startSmtpServer()]);
  memory = createTestMemory(db.prisma);
  email = createTestEmail(db.prisma, smtp.url);
});
afterAll(async () => {
  await email?.close();
  await memory?.store.close();
  await smtp?.close();
  await db?.drop();
});

const acts = () =>
  createToolActivities({
    prisma: db.prisma,
    email,
    memory,
    workingSetTokens: defaultConfig().KEEL_WORKING_SET_TOKENS,
    operatorName: 'Test Operator',
  });

async function goalWithDraft(title: string, metadata: Record<string, unknown> = {}) {
  const g = await goalWithSteps(db.prisma, title, [{ id: 'send', tool: 'email.send' }]);
  const ref = await saveArtifact(db.prisma, {
    goalId: g.goalId,
    stepId: 'draft',
    kind: 'draft',
    title: 'Re: Your invoice',
    content: 'Hi Ada,\n\nThanks, the invoice is paid.\n',
    metadata: { subject: 'Re: Your invoice', ...metadata },
  });
  return { g, draft: { ref, preview: 'Hi Ada' } };
}

test('inReplyTo on the step arrives as In-Reply-To and References at the SMTP server', async () => {
  const { g, draft } = await goalWithDraft('Reply to Ada');
  const before = smtp.messages.length;
  const result = await runAttempt(
    acts().sendEmail,
    g.input('send', { to: 'ada@example.com', draft, inReplyTo: 'CAF=abc.123@mail.example.com' }),
  );
  expect(emailSend.output.safeParse(result.output).success).toBe(true);
  expect(result.output.inReplyTo).toBe('<CAF=abc.123@mail.example.com>');
  await smtp.waitFor(before + 1);
  const [received] = smtp.messages.slice(before);
  expect(received.headers['in-reply-to']).toBe('<CAF=abc.123@mail.example.com>');
  expect(received.headers['references']).toBe('<CAF=abc.123@mail.example.com>');
  expect(received.subject).toBe('Re: Your invoice');
});

test('a draft written as a reply carries the thread: References lists it, ending with the message answered', async () => {
  const { g, draft } = await goalWithDraft('Reply in a thread', {
    inReplyTo: '<second@mail.example.com>',
    references: ['<first@mail.example.com>', '<second@mail.example.com>'],
  });
  const before = smtp.messages.length;
  await runAttempt(acts().sendEmail, g.input('send', { to: 'ada@example.com', draft }));
  await smtp.waitFor(before + 1);
  const [received] = smtp.messages.slice(before);
  expect(received.headers['in-reply-to']).toBe('<second@mail.example.com>');
  expect(received.headers['references']).toBe('<first@mail.example.com> <second@mail.example.com>');
});

test('without inReplyTo nothing changes: no In-Reply-To or References', async () => {
  const { g, draft } = await goalWithDraft('A new thread');
  const before = smtp.messages.length;
  const result = await runAttempt(acts().sendEmail, g.input('send', { to: 'ada@example.com', draft }));
  expect(result.output.inReplyTo).toBeUndefined();
  await smtp.waitFor(before + 1);
  const [received] = smtp.messages.slice(before);
  expect(received.headers['in-reply-to']).toBeUndefined();
  expect(received.headers['references']).toBeUndefined();
});

test.each(['<a@b>\r\nBcc: eve@evil.test', 'two words@example.com', 'no-at-sign', '<a@b@c>'])(
  'an inReplyTo that is not a Message-ID (%j) is InvalidInput, and nothing is sent',
  async (inReplyTo) => {
    const { g, draft } = await goalWithDraft('Bad reply');
    const before = smtp.messages.length;
    const err = await failureOf(
      runAttempt(acts().sendEmail, g.input('send', { to: 'ada@example.com', draft, inReplyTo })),
    );
    expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(err.message).toContain('inReplyTo:');
    expect(smtp.messages.length).toBe(before);
  },
);

test('the connector refuses header-breaking threading ids itself', async () => {
  await expect(
    email.send({
      idempotencyKey: 'reply-bad-refs',
      to: 'ada@example.com',
      subject: 'x',
      body: 'y',
      inReplyTo: '<ok@example.com>',
      references: ['<ok@example.com>\r\nX-Evil: 1'],
    }),
  ).rejects.toMatchObject({ type: 'InvalidEmailRequest', nonRetryable: true });
});

test('the approval shows what the email replies to', () => {
  const described = describeApproval(
    emailSend,
    { to: 'ada@example.com', draft: { ref: 'a1' }, inReplyTo: '<x@y.example>' },
    { id: 'a1', title: 'Re: hi', content: 'Hello', metadata: {} },
    't',
  );
  expect(described).toMatchObject({ ok: true, proposed: { inReplyTo: '<x@y.example>', subject: 'Re: hi' } });
});
