/**
 * Slack approval buttons end to end, with real parts: the Temporal dev
 * server, PostgreSQL, a worker, the SMTP server, the API with Bolt's
 * ExpressReceiver mounted, the notifier posting through the real
 * @slack/web-api client to the Slack stand-in, and interaction requests
 * signed with the signing secret the way Slack signs them.
 */
import { randomBytes } from 'node:crypto';
import { LogLevel } from '@slack/bolt';
import { createSlackWebClient } from '../../slack/client';
import { createSlackNotifier, type SlackNotifier } from '../../slack/notify';
import { startEngine, type ServedApi, type TestEngine } from '../helpers/engine';
import { slackSignature, startSlackStandin, type SlackMessage, type SlackStandin } from '../helpers/slack-standin';

const SECRET = 'slack-signing-secret-for-tests';
const APPROVER = 'U0APPROVER';
const STRANGER = 'U0STRANGER';
const CHANNEL = 'C0GENERAL';

let engine: TestEngine;
let slack: SlackStandin;
let slackApi: ServedApi;
let notifier: SlackNotifier;
const notifierLog: string[] = [];

const web = () => createSlackWebClient({ token: slack.token, apiUrl: slack.apiUrl, timeoutMs: 2000 });
const newNotifier = () =>
  createSlackNotifier({
    prisma: engine.db.prisma,
    web: web(),
    channel: CHANNEL,
    intervalMs: 150,
    claimStaleMs: 5000,
    log: (m) => notifierLog.push(m),
  });

beforeAll(async () => {
  [engine, slack] = await Promise.all([startEngine(), startSlackStandin()]);
  await engine.startWorker();
  notifier = newNotifier();
  slackApi = await engine.serveApi({
    slack: { signingSecret: SECRET, approvers: [APPROVER], web: web(), notifier, logLevel: LogLevel.ERROR },
  });
  notifier.start();
});
afterAll(async () => {
  await notifier?.stop();
  await engine?.close();
  await slack?.close();
});

const uniq = () => randomBytes(3).toString('hex');
const nowS = () => Math.floor(Date.now() / 1000);

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts an email goal and answers its pending approval. */
async function emailGoal(who = `ada-${uniq()}`) {
  const to = `${who}@example.com`;
  const { body } = await engine.http('POST', '/v1/goals', { title: `Email ${to} a thank-you note for the referral` });
  const goal = await engine.waitForGoal(body.goalId, (g) => g.status === 'awaiting_approval');
  return { goalId: body.goalId as string, to, approval: goal.approvals[0] };
}

/** Messages in the channel that show an approval (by the id in their buttons or text). */
const messagesShowing = (approvalId: string) =>
  slack.messagesIn(CHANNEL).filter((m) => JSON.stringify(m.blocks ?? []).includes(approvalId));

const messageOf = (approvalId: string) =>
  until(`a Slack message for ${approvalId}`, () => messagesShowing(approvalId)[0]);

const actionsBlocks = (m: SlackMessage) => (m.blocks ?? []).filter((b: any) => b.type === 'actions');
const allText = (m: SlackMessage) => JSON.stringify(m.blocks ?? []);
/** Every mrkdwn text of a message (sections, their fields, context), one per line, as Slack renders them. */
const texts = (m: SlackMessage): string[] =>
  (m.blocks ?? []).flatMap((b: any) => [
    ...(b.text ? [b.text.text] : []),
    ...(b.fields ?? []).map((f: any) => f.text),
    ...(b.type === 'context' ? b.elements.map((e: any) => e.text) : []),
  ]);
/** Whether a message still has buttons for an approval. */
const hasButtonsFor = (m: SlackMessage, approvalId: string) =>
  actionsBlocks(m).some((b: any) => b.elements.some((e: any) => e.value && JSON.parse(e.value).a === approvalId));

/** The button `actionId` for `approvalId` in a message, with its block. */
function button(m: SlackMessage, actionId: string, approvalId?: string) {
  for (const block of actionsBlocks(m)) {
    for (const el of block.elements) {
      if (el.action_id === actionId && (!approvalId || JSON.parse(el.value).a === approvalId)) return { block, el };
    }
  }
  throw new Error(`no ${actionId} button for ${approvalId} in ${allText(m)}`);
}

/** A block_actions payload as Slack sends it for a click on a button of `m`. */
function clickPayload(
  m: SlackMessage,
  actionId: string,
  opts: { approvalId?: string; user?: string; actionTs?: string } = {},
) {
  const { block, el } = button(m, actionId, opts.approvalId);
  const user = opts.user ?? APPROVER;
  return {
    type: 'block_actions',
    user: { id: user, username: user.toLowerCase(), name: user.toLowerCase(), team_id: 'T0KEEL' },
    api_app_id: 'A0KEEL',
    token: 'verification-token-unused',
    team: { id: 'T0KEEL', domain: 'keel' },
    trigger_id: `${nowS()}.trigger.${uniq()}`,
    container: { type: 'message', message_ts: m.ts, channel_id: CHANNEL, is_ephemeral: false },
    channel: { id: CHANNEL, name: 'general' },
    message: { type: 'message', ts: m.ts, text: m.text, bot_id: 'B0KEEL', blocks: m.blocks },
    response_url: 'https://hooks.slack.invalid/actions/T0KEEL/1/x',
    actions: [
      {
        type: 'button',
        action_id: actionId,
        block_id: block.block_id,
        value: el.value,
        text: el.text,
        action_ts: opts.actionTs ?? `${(Date.now() / 1000).toFixed(6)}`,
      },
    ],
  };
}

/** A view_submission payload for a modal Keel opened, with `values` typed into its inputs (by block id). */
function submissionPayload(view: { id: string; view: any }, values: Record<string, string>, user = APPROVER) {
  return {
    type: 'view_submission',
    team: { id: 'T0KEEL', domain: 'keel' },
    user: { id: user, username: user.toLowerCase(), name: user.toLowerCase(), team_id: 'T0KEEL' },
    api_app_id: 'A0KEEL',
    token: 'verification-token-unused',
    trigger_id: `${nowS()}.trigger.${uniq()}`,
    view: {
      id: view.id,
      team_id: 'T0KEEL',
      type: 'modal',
      callback_id: view.view.callback_id,
      private_metadata: view.view.private_metadata,
      blocks: view.view.blocks,
      hash: `${view.id}-hash`,
      app_id: 'A0KEEL',
      state: {
        values: Object.fromEntries(
          Object.entries(values).map(([block, value]) => [block, { value: { type: 'plain_text_input', value } }]),
        ),
      },
    },
    response_urls: [],
  };
}

/** POSTs an interaction the way Slack does: form-encoded `payload`, signed v0 over `v0:<ts>:<body>`. */
async function interact(
  payload: unknown,
  opts: { ts?: number; secret?: string; signature?: string; headers?: Record<string, string>; rawBody?: string } = {},
) {
  const body = opts.rawBody ?? new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  const ts = opts.ts ?? nowS();
  const signature = opts.signature ?? slackSignature(opts.secret ?? SECRET, ts, body);
  const res = await fetch(`${slackApi.url}/slack/interactions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': String(ts),
      'x-slack-signature': signature,
      ...opts.headers,
    },
    body,
  });
  const text = await res.text();
  return { status: res.status, text };
}

const approvalRow = (id: string) => engine.db.prisma.approval.findUniqueOrThrow({ where: { id } });
const decisionEvents = (approvalId: string) =>
  engine.db.prisma.event.findMany({
    where: {
      type: { in: ['approval.approved', 'approval.rejected'] },
      data: { path: ['approvalId'], equals: approvalId },
    },
  });

/** The message once chat.update has shown the approval's outcome (no buttons for it left). */
const updatedMessage = (approvalId: string, word: string) =>
  until(`the message of ${approvalId} updated to ${word}`, () => {
    const m = messagesShowing(approvalId)[0];
    return m && m.updates > 0 && allText(m).includes(word) && !hasButtonsFor(m, approvalId) ? m : undefined;
  });

test('a new approval is posted with its summary, draft, reasons and buttons; Approve decides it and the goal finishes', async () => {
  const { goalId, to, approval } = await emailGoal();
  const m = await messageOf(approval.approvalId);
  const shown = texts(m);
  // Summary, the draft (to, subject, body), the planner's rationale and the policy's reasons.
  expect(m.text).toBe(`Approval needed: ${approval.summary}`);
  expect(shown[0]).toBe(`:raised_hand: *${approval.summary}*`);
  expect(shown).toContain(`*To*\n${to}`);
  expect(shown).toContain(`*Subject*\n${approval.proposed.subject}`);
  const quotedBody = approval.proposed.body
    .split('\n')
    .map((line: string) => `>${line}`)
    .join('\n');
  expect(shown).toContain(`*Body*\n${quotedBody}`);
  const reasons = shown.find((t) => t.startsWith('*Why this step:*'))!;
  expect(reasons).toContain(`*Why this step:* ${approval.rationale}`);
  expect(approval.proposed.why).toContain('email.send cannot be undone');
  expect(reasons).toContain(`*Why it waits for you:* ${approval.proposed.why.join('; ')}`);
  // Approve / Reject / Edit, each carrying the approval (and the hash of what it shows, when it has one).
  const [actions] = actionsBlocks(m);
  expect(actions.elements.map((e: any) => e.action_id)).toEqual(['keel_approve', 'keel_reject', 'keel_edit']);
  const value = JSON.parse(actions.elements[0].value);
  expect(value.a).toBe(approval.approvalId);
  const row: any = await approvalRow(approval.approvalId);
  if (typeof row.shownHash === 'string') expect(value.h).toBe(row.shownHash);
  // The message carries its key, so a poster that died before storing the ts finds it again.
  expect(m.metadata).toEqual({
    event_type: 'keel_approval',
    event_payload: { key: `keel-approval:${approval.approvalId}` },
  });

  const res = await interact(clickPayload(m, 'keel_approve'));
  expect(res.status).toBe(200);
  await engine.waitForGoal(goalId, (g) => g.status === 'completed');
  await engine.smtp.waitFor(1);
  expect(engine.smtp.messages.filter((x) => x.to.includes(to))).toHaveLength(1);
  const decided = await approvalRow(approval.approvalId);
  expect(decided).toMatchObject({ status: 'approved', actor: `slack:${APPROVER}` });

  // The message now says who decided what, without buttons.
  const updated = await updatedMessage(approval.approvalId, 'Approved');
  expect(actionsBlocks(updated)).toHaveLength(0);
  expect(allText(updated)).toContain(`<@${APPROVER}>`);
  const update = slack.callsOf('chat.update').find((c) => c.args.ts === m.ts)!;
  expect(update.args.channel).toBe(CHANNEL);
  // Posted once, however many passes ran since.
  await new Promise((r) => setTimeout(r, 500));
  expect(messagesShowing(approval.approvalId)).toHaveLength(1);
  const row2 = await engine.db.prisma.slackMessage.findUniqueOrThrow({ where: { approvalId: approval.approvalId } });
  expect(row2).toMatchObject({ ts: m.ts, channel: CHANNEL, shownStatus: 'approved', kind: 'email.send' });
});

test('Edit opens a modal with the editable draft; its submission approves with the edits, and the edited text is sent', async () => {
  const { goalId, to, approval } = await emailGoal();
  const m = await messageOf(approval.approvalId);
  const click = clickPayload(m, 'keel_edit');
  expect((await interact(click)).status).toBe(200);
  const opened = await until('views.open', () => slack.views.find((v) => v.triggerId === click.trigger_id));
  const inputs = opened.view.blocks.filter((b: any) => b.type === 'input');
  // The fields email.send's spec lets an operator edit, filled with the draft.
  expect(inputs.map((b: any) => b.block_id)).toEqual(['field:subject', 'field:body']);
  expect(inputs[0].element.initial_value).toBe(approval.proposed.subject);
  expect(inputs[1].element.initial_value).toBe(approval.proposed.body);
  expect(inputs[1].element.multiline).toBe(true);

  // A subject over the spec's limit keeps the modal open with the problem under the field; nothing is decided.
  const refused = await interact(
    submissionPayload(opened, { 'field:subject': 'x'.repeat(999), 'field:body': approval.proposed.body }),
  );
  expect(refused.status).toBe(200);
  const answer = JSON.parse(refused.text);
  expect(answer.response_action).toBe('errors');
  expect(Object.keys(answer.errors)).toEqual(['field:subject']);
  expect((await approvalRow(approval.approvalId)).status).toBe('pending');

  const edited = `Dear ${to}, thank you for the referral; it meant a lot. (edited in Slack ${uniq()})`;
  const res = await interact(
    submissionPayload(opened, { 'field:subject': approval.proposed.subject, 'field:body': edited }),
  );
  expect(res.status).toBe(200);
  await engine.waitForGoal(goalId, (g) => g.status === 'completed');
  const sent = await until('the email', () => engine.smtp.messages.find((x) => x.to.includes(to)));
  expect(sent.raw).toContain(edited.slice(0, 40));
  const decided = await approvalRow(approval.approvalId);
  // Only what changed is an edit.
  expect(decided).toMatchObject({ status: 'approved', actor: `slack:${APPROVER}`, edits: { body: edited } });
  const updated = await updatedMessage(approval.approvalId, 'Approved');
  expect(allText(updated)).toContain('with edits (body)');
});

test('Reject asks for a reason in a modal; the rejection carries it and the message shows it', async () => {
  const { approval } = await emailGoal();
  const m = await messageOf(approval.approvalId);
  const click = clickPayload(m, 'keel_reject');
  expect((await interact(click)).status).toBe(200);
  const opened = await until('views.open', () => slack.views.find((v) => v.triggerId === click.trigger_id));
  expect(opened.view.blocks.filter((b: any) => b.type === 'input').map((b: any) => b.block_id)).toEqual(['reason']);
  const reason = 'Too formal; we are on first-name terms.';
  expect((await interact(submissionPayload(opened, { reason }))).status).toBe(200);
  const decided = await until('the rejection', async () => {
    const row = await approvalRow(approval.approvalId);
    return row.status === 'rejected' ? row : undefined;
  });
  expect(decided).toMatchObject({ actor: `slack:${APPROVER}`, comment: reason });
  const updated = await updatedMessage(approval.approvalId, 'Rejected');
  expect(allText(updated)).toContain(reason);
  expect(actionsBlocks(updated)).toHaveLength(0);
  // A reason has Keel plan again (the default policy): the new draft is posted as a new approval; end the goal.
  const next = await until('the replanned approval', async () => {
    const rows = await engine.db.prisma.approval.findMany({ where: { goalId: approval.goalId, status: 'pending' } });
    return rows[0];
  });
  await messageOf(next.id);
  await engine.http('POST', `/v1/approvals/${next.id}/decision`, { decision: 'reject' });
});

describe('who and what counts', () => {
  let goal: Awaited<ReturnType<typeof emailGoal>>;
  let m: SlackMessage;

  beforeAll(async () => {
    goal = await emailGoal();
    m = await messageOf(goal.approval.approvalId);
  });

  const nothingDecided = async () => {
    expect((await approvalRow(goal.approval.approvalId)).status).toBe('pending');
    expect(await decisionEvents(goal.approval.approvalId)).toHaveLength(0);
  };

  test.each([
    ['a bad signature', { secret: 'not-the-secret' }],
    ['a timestamp 6 minutes old', { ts: nowS() - 6 * 60 }],
    ['a timestamp 6 minutes in the future', { ts: nowS() + 6 * 60 }],
    ['no signature', { signature: '' }],
    ['a timestamp that is not a number', { headers: { 'x-slack-request-timestamp': 'soon' } }],
  ])('%s is refused with 401 and decides nothing', async (_name, opts) => {
    const res = await interact(clickPayload(m, 'keel_approve'), opts);
    expect(res.status).toBe(401);
    await new Promise((r) => setTimeout(r, 300));
    await nothingDecided();
  });

  test('a user not in SLACK_APPROVERS changes nothing and is told so, ephemerally', async () => {
    for (const action of ['keel_approve', 'keel_reject', 'keel_edit']) {
      const click = clickPayload(m, action, { user: STRANGER });
      expect((await interact(click)).status).toBe(200);
      await until('the ephemeral', () => slack.ephemerals.filter((e) => e.user === STRANGER).length >= 1);
      expect(slack.views.find((v) => v.triggerId === click.trigger_id)).toBeUndefined();
    }
    await until('three ephemerals', () => slack.ephemerals.filter((e) => e.user === STRANGER).length === 3);
    for (const e of slack.ephemerals.filter((x) => x.user === STRANGER)) {
      expect(e).toMatchObject({ channel: CHANNEL, text: expect.stringMatching(/not allowed/) });
    }
    await nothingDecided();
    expect(slack.ephemerals.filter((e) => e.user === APPROVER)).toHaveLength(0);
  });

  test('a click Slack delivers again (X-Slack-Retry-Num) decides once', async () => {
    const click = clickPayload(m, 'keel_approve', { actionTs: '1700000000.000001' });
    // The first delivery and Slack's retry of it, at the same time, then one more retry after the decision.
    const [first, retry] = await Promise.all([
      interact(click),
      interact(click, { headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' } }),
    ]);
    expect([first.status, retry.status]).toEqual([200, 200]);
    await engine.waitForGoal(goal.goalId, (g) => g.status === 'completed');
    const decided = await approvalRow(goal.approval.approvalId);
    expect((await interact(click, { headers: { 'x-slack-retry-num': '2' } })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await decisionEvents(goal.approval.approvalId)).toHaveLength(1);
    expect(await approvalRow(goal.approval.approvalId)).toMatchObject({
      status: 'approved',
      actor: `slack:${APPROVER}`,
      decidedAt: decided.decidedAt,
    });
    expect(engine.smtp.messages.filter((x) => x.to.includes(goal.to))).toHaveLength(1);
    // A retry that finds its own decision done is not an error to the person who clicked.
    expect(slack.ephemerals.filter((e) => e.user === APPROVER)).toHaveLength(0);
  });
});

test('after a decision through the API the Slack message is updated with chat.update, buttons removed', async () => {
  const { goalId, approval } = await emailGoal();
  const m = await messageOf(approval.approvalId);
  const updatesBefore = slack.callsOf('chat.update').length;
  const res = await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, { decision: 'approve' });
  expect(res.status).toBe(200);
  const updated = await updatedMessage(approval.approvalId, 'Approved');
  expect(updated.ts).toBe(m.ts);
  expect(actionsBlocks(updated)).toHaveLength(0);
  expect(allText(updated)).toContain('operator:test');
  expect(slack.callsOf('chat.update').length).toBeGreaterThan(updatesBefore);
  await engine.waitForGoal(goalId, (g) => g.status === 'completed');
});

test('an approval still waiting after its first deadline gets one reminder in its thread (item 2)', async () => {
  const { goalId, approval } = await emailGoal();
  const m = await messageOf(approval.approvalId);
  const reminders = () =>
    slack
      .callsOf('chat.postMessage')
      .filter((c) => c.args.thread_ts === m.ts && String(c.args.reply_broadcast) === 'true');
  expect(reminders()).toHaveLength(0);
  // What the workflow's first deadline does (escalateApproval): the approval is flagged escalated.
  await engine.db.prisma.approval.update({ where: { id: approval.approvalId }, data: { escalated: true } });
  await notifier.sync();
  await notifier.sync();
  expect(reminders()).toHaveLength(1);
  expect(String(reminders()[0].args.text)).toMatch(/^Reminder: still waiting for a decision on/);
  await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, { decision: 'reject' });
  await engine.waitForGoal(goalId, (g) => g.status === 'failed');
});

test('approvals of one kind found together are one message with Approve all; two notifiers post it once', async () => {
  await notifier.stop();
  try {
    const goals = await Promise.all([emailGoal(), emailGoal(), emailGoal()]);
    const other = newNotifier();
    // Two API processes' passes at once: the claims let exactly one of them post each approval.
    await Promise.all([notifier.sync(), other.sync()]);
    const ids = goals.map((g) => g.approval.approvalId);
    const showing = slack.messagesIn(CHANNEL).filter((x) => ids.some((id) => allText(x).includes(id)));
    expect(showing).toHaveLength(1);
    const [group] = showing;
    for (const id of ids) expect(button(group, 'keel_approve', id)).toBeDefined();
    const all = button(group, 'keel_approve_all');
    expect(all.el.text.text).toBe('Approve all 3');
    // Keyed by the first approval it claimed (which of the three was created first is a race).
    expect(ids.map((id) => `keel-approval:${id}`)).toContain(group.metadata?.event_payload.key);

    // A stranger's "Approve all" changes nothing.
    await interact(clickPayload(group, 'keel_approve_all', { user: STRANGER }));
    await until('the ephemeral', () => slack.ephemerals.filter((e) => e.user === STRANGER).length >= 4);

    // One item decided on its own first, then the rest with "Approve all".
    expect((await interact(clickPayload(group, 'keel_approve', { approvalId: ids[0] }))).status).toBe(200);
    await until('the first approval', async () => (await approvalRow(ids[0])).status === 'approved');
    await notifier.sync();
    const partly = slack.messagesIn(CHANNEL).find((x) => x.ts === group.ts)!;
    expect(button(partly, 'keel_approve_all').el.text.text).toBe('Approve all 2');
    expect(() => button(partly, 'keel_approve', ids[0])).toThrow();
    expect((await interact(clickPayload(partly, 'keel_approve_all'))).status).toBe(200);
    await Promise.all(goals.map((g) => engine.waitForGoal(g.goalId, (x) => x.status === 'completed')));
    for (const id of ids)
      expect(await approvalRow(id)).toMatchObject({ status: 'approved', actor: `slack:${APPROVER}` });
    await notifier.sync();
    const done = slack.messagesIn(CHANNEL).find((x) => x.ts === group.ts)!;
    expect(actionsBlocks(done)).toHaveLength(0);
    expect(allText(done).match(/Approved\*/g)).toHaveLength(3);
  } finally {
    notifier.start();
  }
});

test('a post whose answer never came back is found in the channel history, not posted again', async () => {
  await notifier.stop();
  try {
    // Slack takes the message but answers after the client's 2 s deadline: the ts is never stored.
    slack.script('chat.postMessage', { delayMs: 2500 });
    const { goalId, approval } = await emailGoal();
    await notifier.sync();
    expect(notifierLog.join('\n')).toMatch(/posting approval message .* failed/);
    const claimed = await engine.db.prisma.slackMessage.findUniqueOrThrow({
      where: { approvalId: approval.approvalId },
    });
    expect(claimed.ts).toBeNull();
    await until('the late post', () => messagesShowing(approval.approvalId).length === 1);
    // A pass before the claim is stale leaves it alone; one after finds the message by its key.
    await notifier.sync();
    expect(
      slack.callsOf('chat.postMessage').filter((c) => JSON.stringify(c.args).includes(approval.approvalId)),
    ).toHaveLength(1);
    await engine.db.prisma.slackMessage.update({
      where: { approvalId: approval.approvalId },
      data: { claimedAt: new Date(Date.now() - 60_000) },
    });
    await notifier.sync();
    const recovered = await engine.db.prisma.slackMessage.findUniqueOrThrow({
      where: { approvalId: approval.approvalId },
    });
    const [only] = messagesShowing(approval.approvalId);
    expect(recovered.ts).toBe(only.ts);
    expect(messagesShowing(approval.approvalId)).toHaveLength(1);
    await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, { decision: 'approve' });
    await engine.waitForGoal(goalId, (g) => g.status === 'completed');
    await notifier.sync();
    expect(actionsBlocks(messagesShowing(approval.approvalId)[0])).toHaveLength(0);
  } finally {
    notifier.start();
  }
});

test('POST /slack/interactions without Slack configured is a 404 naming the settings', async () => {
  const res = await fetch(`${engine.apiUrl}/slack/interactions`, { method: 'POST', body: 'payload=%7B%7D' });
  expect(res.status).toBe(404);
  expect(((await res.json()) as any).error.message).toMatch(/SLACK_SIGNING_SECRET/);
});

test('a trust rule the approvals suggest is posted once with Accept and Dismiss; only an approver accepts it (item 8)', async () => {
  const who = `trusty-${uniq()}`;
  for (let i = 0; i < 3; i++) {
    const { goalId, approval } = await emailGoal(who);
    await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, { decision: 'approve' });
    await engine.waitForGoal(goalId, (g) => g.status === 'completed');
  }
  const rule = (await engine.http('GET', '/v1/trust-rules?status=suggested')).body.rules.find(
    (r: any) => r.audience === `${who}@example.com`,
  );
  expect(rule).toBeDefined();
  await Promise.all([notifier.sync(), newNotifier().sync()]);
  const posted = await until('the suggestion message', () => {
    const found = slack.messagesIn(CHANNEL).filter((m) => allText(m).includes(`auto-approve email.send to ${who}`));
    return found.length ? found : undefined;
  });
  expect(posted).toHaveLength(1);
  const [message] = posted;
  expect(button(message, 'keel_trust_accept').el.value).toBe(rule.id);

  await interact(clickPayload(message, 'keel_trust_accept', { user: STRANGER }));
  await until('the ephemeral', () => slack.ephemerals.some((e) => e.user === STRANGER && /not allowed/i.test(e.text)));
  expect((await engine.http('GET', '/v1/trust-rules?status=suggested')).body.rules.map((r: any) => r.id)).toContain(
    rule.id,
  );

  await interact(clickPayload(message, 'keel_trust_accept'));
  const accepted = await until('the rule accepted', async () =>
    (await engine.http('GET', '/v1/trust-rules?status=accepted')).body.rules.find((r: any) => r.id === rule.id),
  );
  expect(accepted.decidedBy).toBe(`slack:${APPROVER}`);
  const updated = await until('the message updated', () => {
    const m = slack.messagesIn(CHANNEL).find((x) => x.ts === message.ts);
    return m && actionsBlocks(m).length === 0 ? m : undefined;
  });
  expect(allText(updated)).toContain('Rule accepted by');
  await engine.http('POST', `/v1/trust-rules/${rule.id}/revoke`);
});
