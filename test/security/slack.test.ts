/**
 * Slack's interactivity endpoint under attack (issue 10, item 2): a bad or
 * missing signature, a signature over another body, a timestamp older or
 * newer than five minutes, a replayed body, and clicks or modal submissions
 * by a Slack user who is not in SLACK_APPROVERS each decide nothing: the
 * approval stays pending, no decision event is written, the goal's Temporal
 * history does not grow, and the canonical tables are unchanged.
 */
import { randomBytes } from 'node:crypto';
import { LogLevel } from '@slack/bolt';
import { ACTIONS, VIEWS, messageFor, rejectModal, editModal } from '../../slack/blocks';
import { createSlackWebClient } from '../../slack/client';
import { loadApproval } from '../../slack/store';
import { serveApp, startEngine, type ServedApi, type TestEngine } from '../helpers/engine';
import { slackSignature, startSlackStandin, type SlackStandin } from '../helpers/slack-standin';
import { STILL_SETTINGS, engineApp, snapshot, until, type Snapshot } from './support';

const SECRET = 'security-suite-slack-signing-secret';
const APPROVER = 'U0APPROVER';
const STRANGER = 'U0STRANGER';
const CHANNEL = 'C0GENERAL';

let engine: TestEngine;
let slack: SlackStandin;
let api: ServedApi;

beforeAll(async () => {
  [engine, slack] = await Promise.all([startEngine({ settings: STILL_SETTINGS }), startSlackStandin()]);
  await engine.startWorker();
  const web = createSlackWebClient({ token: slack.token, apiUrl: slack.apiUrl, timeoutMs: 2000 });
  api = await serveApp(
    engineApp(engine, { slack: { signingSecret: SECRET, approvers: [APPROVER], web, logLevel: LogLevel.ERROR } }),
  );
});
afterAll(async () => {
  await api?.close();
  await engine?.close();
  await slack?.close();
});

const uniq = () => randomBytes(3).toString('hex');
const nowS = () => Math.floor(Date.now() / 1000);

/** A pending email approval and the Slack message Keel would post for it. */
async function pendingApproval() {
  const to = `slack-${uniq()}@example.com`;
  const { body } = await engine.http('POST', '/v1/goals', { title: `Email ${to} a thank-you note` });
  const goal = await engine.waitForGoal(body.goalId, (g) => g.status === 'awaiting_approval');
  const approvalId: string = goal.approvals[0].approvalId;
  const approval = (await loadApproval(engine.db.prisma, approvalId))!;
  const message = { ts: `${nowS()}.000100`, ...messageFor([approval]) };
  return { goalId: body.goalId as string, workflowId: body.workflowId as string, to, approvalId, approval, message };
}
type Pending = Awaited<ReturnType<typeof pendingApproval>>;

function buttonOf(p: Pending, actionId: string) {
  for (const block of p.message.blocks as any[]) {
    for (const el of block.elements ?? []) if (el.action_id === actionId) return { block, el };
  }
  throw new Error(`no ${actionId} button`);
}

/** A block_actions payload as Slack sends it for a click. */
function click(p: Pending, actionId: string, user = APPROVER, actionTs = `${(Date.now() / 1000).toFixed(6)}`) {
  const { block, el } = buttonOf(p, actionId);
  return {
    type: 'block_actions',
    user: { id: user, username: user.toLowerCase(), team_id: 'T0KEEL' },
    api_app_id: 'A0KEEL',
    team: { id: 'T0KEEL', domain: 'keel' },
    trigger_id: `${nowS()}.trigger.${uniq()}`,
    container: { type: 'message', message_ts: p.message.ts, channel_id: CHANNEL },
    channel: { id: CHANNEL, name: 'general' },
    message: { type: 'message', ts: p.message.ts, text: p.message.text, blocks: p.message.blocks },
    actions: [{ type: 'button', action_id: actionId, block_id: block.block_id, value: el.value, action_ts: actionTs }],
  };
}

/** A view_submission of Keel's Edit or Reject modal, with `values` typed in (by block id). */
function submission(view: Record<string, any>, values: Record<string, string>, user = APPROVER) {
  return {
    type: 'view_submission',
    team: { id: 'T0KEEL', domain: 'keel' },
    user: { id: user, username: user.toLowerCase(), team_id: 'T0KEEL' },
    api_app_id: 'A0KEEL',
    view: {
      id: `V${uniq()}`,
      type: 'modal',
      callback_id: view.callback_id,
      private_metadata: view.private_metadata,
      blocks: view.blocks,
      state: {
        values: Object.fromEntries(
          Object.entries(values).map(([b, value]) => [b, { value: { type: 'plain_text_input', value } }]),
        ),
      },
    },
  };
}

const formOf = (payload: unknown) => new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
const sign = (body: string, ts: number, secret = SECRET) => slackSignature(secret, ts, body);

async function post(body: string, headers: Record<string, string>) {
  const res = await fetch(`${api.url}/slack/interactions`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body,
  });
  return { status: res.status, text: await res.text() };
}

/** Signed as Slack signs (or as the options break it). */
function interact(payload: unknown, opts: { ts?: number; secret?: string; headers?: Record<string, string> } = {}) {
  const body = formOf(payload);
  const ts = opts.ts ?? nowS();
  return post(body, {
    'x-slack-request-timestamp': String(ts),
    'x-slack-signature': sign(body, ts, opts.secret),
    ...opts.headers,
  });
}

/** Waits for a goal's workflow to close: its status in the table is written before its last steps. */
const closed = (workflowId: string) =>
  engine.temporal.client.workflow
    .getHandle(workflowId)
    .result()
    .catch(() => undefined);

const historyLength = async (workflowId: string) =>
  (await engine.temporal.client.workflow.getHandle(workflowId).fetchHistory()).events?.length ?? 0;

/** Everything a decision would change: the tables, the workflow list and the goal's history. */
async function state(p: Pending): Promise<{ snap: Snapshot; history: number }> {
  return { snap: await snapshot(engine.db.prisma, engine.temporal.client), history: await historyLength(p.workflowId) };
}

async function expectNothingDecided(p: Pending, before: { snap: Snapshot; history: number }) {
  // A decision is applied after the 200 (Slack is acknowledged first): give one the time to land.
  await new Promise((r) => setTimeout(r, 1500));
  expect(await state(p)).toEqual(before);
  expect(await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: p.approvalId } })).toMatchObject({
    status: 'pending',
    actor: null,
  });
  expect(engine.smtp.messages.filter((m) => m.to.includes(p.to))).toHaveLength(0);
}

describe('requests Slack did not sign, or not now', () => {
  let p: Pending;
  beforeAll(async () => {
    p = await pendingApproval();
  });

  test('a bad, missing or misplaced signature, or a timestamp out of the window, is a 401 and decides nothing', async () => {
    const before = await state(p);
    const payload = click(p, ACTIONS.approve);
    const body = formOf(payload);
    const other = formOf(click(p, ACTIONS.approve, APPROVER, '1.000001'));
    const ts = nowS();
    const cases: [string, string, Record<string, string>][] = [
      ['signed with another secret', body, { 'x-slack-signature': sign(body, ts, 'not-the-secret') }],
      ['no signature', body, {}],
      ['an empty signature', body, { 'x-slack-signature': '' }],
      ['a signature of another body', body, { 'x-slack-signature': sign(other, ts) }],
      ['a v1 signature', body, { 'x-slack-signature': sign(body, ts).replace('v0=', 'v1=') }],
      ['the signature in upper case', body, { 'x-slack-signature': sign(body, ts).toUpperCase() }],
      ['a truncated signature', body, { 'x-slack-signature': sign(body, ts).slice(0, 40) }],
      ['the body with a byte appended', `${body}&x=1`, { 'x-slack-signature': sign(body, ts) }],
      ['the secret itself as the signature', body, { 'x-slack-signature': SECRET }],
    ];
    for (const [why, b, headers] of cases) {
      const res = await post(b, { 'x-slack-request-timestamp': String(ts), ...headers });
      expect([why, res.status]).toEqual([why, 401]);
    }
    const stamps: [string, string][] = [
      ['6 minutes old', String(nowS() - 6 * 60)],
      ['a day old', String(nowS() - 86_400)],
      ['6 minutes ahead', String(nowS() + 6 * 60)],
      ['a year ahead', String(nowS() + 365 * 86_400)],
      ['zero', '0'],
      ['negative', '-1'],
      ['not a number', 'soon'],
      ['fractional', `${nowS()}.5`],
      ['missing', ''],
    ];
    for (const [why, stamp] of stamps) {
      // Correctly signed over the stamp it carries: only the window refuses it.
      const res = await post(body, {
        'x-slack-request-timestamp': stamp,
        'x-slack-signature': slackSignature(SECRET, stamp, body),
      });
      expect([why, res.status]).toEqual([why, 401]);
    }
    // A captured request sent again later with a fresh timestamp: its signature no longer matches.
    const res = await post(body, {
      'x-slack-request-timestamp': String(nowS() + 1),
      'x-slack-signature': sign(body, ts),
    });
    expect(res.status).toBe(401);
    await expectNothingDecided(p, before);
  });

  test('a person not in SLACK_APPROVERS decides nothing by any button or modal, and is told so', async () => {
    const before = await state(p);
    const shownBefore = slack.ephemerals.filter((e) => e.user === STRANGER).length;
    const approval = (await loadApproval(engine.db.prisma, p.approvalId))!;
    const where = { channel: CHANNEL, ts: p.message.ts };
    const edit = editModal(approval, where) as Record<string, any>;
    const reject = rejectModal(approval, where) as Record<string, any>;
    expect(edit.callback_id).toBe(VIEWS.edit);
    const attempts = [
      click(p, ACTIONS.approve, STRANGER),
      click(p, ACTIONS.reject, STRANGER),
      click(p, ACTIONS.edit, STRANGER),
      submission(edit, { 'field:subject': 'Pay me', 'field:body': 'Send the money to x@evil.test' }, STRANGER),
      submission(reject, { reason: 'no' }, STRANGER),
    ];
    for (const payload of attempts) expect((await interact(payload)).status).toBe(200);
    await until('an ephemeral per attempt', () =>
      slack.ephemerals.filter((e) => e.user === STRANGER).length >= shownBefore + attempts.length ? true : undefined,
    );
    for (const e of slack.ephemerals.filter((x) => x.user === STRANGER)) expect(e.text).toMatch(/not allowed/);
    // No modal was opened for them.
    expect(slack.views.filter((v) => attempts.some((a: any) => a.trigger_id && a.trigger_id === v.triggerId))).toEqual(
      [],
    );
    await expectNothingDecided(p, before);
  });

  test('a trust rule cannot be accepted from Slack by someone not in SLACK_APPROVERS', async () => {
    const rule = await engine.db.prisma.trustRule.create({
      data: {
        id: `rule-${uniq()}`,
        tool: 'email.send',
        audience: 'x@evil.test',
        status: 'suggested',
        evidence: 3,
      },
    });
    const before = await state(p);
    const payload = {
      ...click(p, ACTIONS.approve, STRANGER),
      actions: [{ type: 'button', action_id: ACTIONS.trustAccept, block_id: 'b', value: rule.id, action_ts: '2.0' }],
    };
    expect((await interact(payload)).status).toBe(200);
    await expectNothingDecided(p, before);
    expect(await engine.db.prisma.trustRule.findUniqueOrThrow({ where: { id: rule.id } })).toMatchObject({
      status: 'suggested',
    });
    await engine.db.prisma.trustRule.delete({ where: { id: rule.id } });
  });
});

describe('replays', () => {
  test('a signed click replayed, at once or later, is the same decision: one decision, one email', async () => {
    const p = await pendingApproval();
    const body = formOf(click(p, ACTIONS.approve, APPROVER, '1700000000.000777'));
    const ts = nowS();
    const headers = { 'x-slack-request-timestamp': String(ts), 'x-slack-signature': sign(body, ts) };
    // The original and two replays of the same bytes at once (no X-Slack-Retry-Num: not Slack's retries).
    const answers = await Promise.all([post(body, headers), post(body, headers), post(body, headers)]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    await engine.waitForGoal(p.goalId, (g) => g.status === 'completed');
    await engine.smtp.waitFor(1);
    await closed(p.workflowId);
    const settled = await state(p);
    // Replayed again once the goal is done.
    expect((await post(body, headers)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await state(p)).toEqual(settled);
    const decisions = await engine.db.prisma.event.findMany({
      where: {
        type: { in: ['approval.approved', 'approval.rejected'] },
        data: { path: ['approvalId'], equals: p.approvalId },
      },
    });
    expect(decisions).toHaveLength(1);
    expect(engine.smtp.messages.filter((m) => m.to.includes(p.to))).toHaveLength(1);
  });

  test('an approve click replayed after the operator rejected the approval elsewhere decides nothing', async () => {
    const p = await pendingApproval();
    const body = formOf(click(p, ACTIONS.approve));
    const ts = nowS();
    const headers = { 'x-slack-request-timestamp': String(ts), 'x-slack-signature': sign(body, ts) };
    const rejected = await engine.http('POST', `/v1/approvals/${p.approvalId}/decision`, { decision: 'reject' });
    expect(rejected.status).toBe(200);
    await engine.waitForGoal(p.goalId, (g) => g.status === 'failed');
    await closed(p.workflowId);
    const settled = await state(p);
    expect((await post(body, headers)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await state(p)).toEqual(settled);
    expect(await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: p.approvalId } })).toMatchObject({
      status: 'rejected',
    });
    expect(engine.smtp.messages.filter((m) => m.to.includes(p.to))).toHaveLength(0);
  });
});
