/**
 * slack.post and webhook.call inside a goal, end to end: a planner passed to
 * the worker plans a Slack post and then a webhook call; each waits for its
 * approval (through the API), then happens exactly once, against the Slack
 * stand-in (the real WebClient) and a local webhook receiver.
 */
import { createSlackConnector, SLACK_FAULT_AFTER_POST } from '../../connectors/slack';
import { createWebhookConnector, verifyWebhookSignature } from '../../connectors/webhook';
import type { PlanGoalInput } from '../../shared/activity-io';
import type { ProposedPlan } from '../../shared/plan';
import { startEngine, type TestEngine } from '../helpers/engine';
import { startSlackStandin, type SlackStandin } from '../helpers/slack-standin';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';

const SECRET = 'whsec_workflow_test';

let engine: TestEngine;
let slack: SlackStandin;
let receiver: WebhookReceiver;
/** When set, the next Slack post fails right after Slack took it, before the commit: a crash in the window. */
let crashAfterNextPost = false;

/** Every goal: post its title to Slack, then tell the receiver about it. */
async function announcePlanner(input: PlanGoalInput): Promise<ProposedPlan> {
  return {
    rationale: 'announce, then notify',
    generatedBy: 'test-planner',
    model: 'none',
    promptHash: 'none',
    costUsd: 0,
    inputTokens: 0,
    outputTokens: 0,
    steps: [
      {
        id: 'post',
        tool: 'slack.post',
        title: 'Announce in Slack',
        rationale: 'the team should know',
        inputs: { channel: '#general', text: input.title },
        dependsOn: [],
      },
      {
        id: 'notify',
        tool: 'webhook.call',
        title: 'Notify the CRM',
        rationale: 'the CRM tracks announcements',
        inputs: { url: `${receiver.url}/crm`, body: JSON.stringify({ goal: input.goalId, title: input.title }) },
        dependsOn: ['post'],
      },
    ],
  };
}

beforeAll(async () => {
  [engine, slack, receiver] = await Promise.all([startEngine(), startSlackStandin(), startWebhookReceiver()]);
  await engine.startWorker({
    planner: announcePlanner,
    slack: createSlackConnector({
      token: slack.token,
      apiUrl: slack.apiUrl,
      timeoutMs: 2000,
      prisma: engine.db.prisma,
      faults: {
        async hit(point) {
          if (point === SLACK_FAULT_AFTER_POST && crashAfterNextPost) {
            crashAfterNextPost = false;
            throw new Error('the worker died after Slack took the message (simulated)');
          }
        },
      },
    }),
    webhook: createWebhookConnector({ secret: SECRET, timeoutMs: 2000, prisma: engine.db.prisma }),
  });
});
afterAll(async () => {
  await engine?.close();
  await slack?.close();
  await receiver?.close();
});

/** The goal's one pending approval, once it is there. */
async function pendingApproval(goalId: string, stepId: string) {
  await engine.waitForGoal(goalId, (g) => g.approvals.some((a: any) => a.stepId === stepId && a.status === 'pending'));
  const { body } = await engine.http('GET', '/v1/approvals?status=pending');
  return body.approvals.find((a: any) => a.goalId === goalId && a.stepId === stepId);
}

test('posts to Slack after its approval, then calls the webhook after its approval, each exactly once', async () => {
  const { body } = await engine.http('POST', '/v1/goals', { title: 'We shipped the invoice fix', kind: 'note' });
  const goalId = body.goalId;

  const postApproval = await pendingApproval(goalId, 'post');
  expect(postApproval.summary).toBe('Post to #general: "We shipped the invoice fix"');
  expect(slack.callsOf('chat.postMessage')).toHaveLength(0);
  const decided = await engine.http('POST', `/v1/approvals/${postApproval.approvalId}/decision`, {
    decision: 'approve',
    edits: { text: 'We shipped the invoice fix :rocket:' },
  });
  expect(decided.status).toBe(200);

  const hookApproval = await pendingApproval(goalId, 'notify');
  expect(hookApproval.summary).toBe(
    `POST to ${receiver.url}/crm: {"goal":"${goalId}","title":"We shipped the invoice fix"}`,
  );
  // The post went out once, with the operator's text; the webhook waits.
  expect(slack.messagesIn('C0GENERAL').map((m) => m.text)).toEqual(['We shipped the invoice fix :rocket:']);
  expect(receiver.requests).toHaveLength(0);
  await engine.http('POST', `/v1/approvals/${hookApproval.approvalId}/decision`, { decision: 'approve' });

  const done = await engine.waitForGoal(goalId, (g) => g.status === 'completed');
  expect(done.plan.steps.map((s: any) => [s.id, s.status])).toEqual([
    ['post', 'completed'],
    ['notify', 'completed'],
  ]);
  const key = (step: string) => `goal-${goalId}:v1:${step}`;
  expect(slack.callsOf('chat.postMessage')).toHaveLength(1);
  expect(slack.messagesIn('C0GENERAL')[0].metadata).toEqual({
    event_type: 'keel_side_effect',
    event_payload: { key: key('post') },
  });
  expect(receiver.requests).toHaveLength(1);
  const [req] = receiver.requests;
  expect(req.headers['idempotency-key']).toBe(key('notify'));
  expect(verifyWebhookSignature(SECRET, String(req.headers['x-keel-signature']), req.body)).toBe(true);
  expect(JSON.parse(req.body)).toEqual({ goal: goalId, title: 'We shipped the invoice fix' });
  const effects = await engine.db.prisma.sideEffect.findMany({ where: { goalId }, orderBy: { createdAt: 'asc' } });
  expect(effects.map((e) => [e.kind, e.status, e.attempts])).toEqual([
    ['slack.post', 'committed', 1],
    ['webhook.call', 'committed', 1],
  ]);
});

test('rejecting the webhook call fails the goal and compensation deletes the Slack post', async () => {
  const { body } = await engine.http('POST', '/v1/goals', { title: 'Premature announcement', kind: 'note' });
  const goalId = body.goalId;
  const postApproval = await pendingApproval(goalId, 'post');
  await engine.http('POST', `/v1/approvals/${postApproval.approvalId}/decision`, { decision: 'approve' });
  const hookApproval = await pendingApproval(goalId, 'notify');
  const posted = slack.messagesIn('C0GENERAL').find((m) => m.text === 'Premature announcement');
  expect(posted).toBeDefined();

  // A plain no (a comment would replan once first).
  await engine.http('POST', `/v1/approvals/${hookApproval.approvalId}/decision`, { decision: 'reject' });
  const failed = await engine.waitForGoal(goalId, (g) => g.status === 'failed');
  expect(failed.plan.steps.find((s: any) => s.id === 'post').status).toBe('compensated');
  expect(slack.callsOf('chat.delete').map((c) => c.args.ts)).toContain(posted!.ts);
  expect(slack.messagesIn('C0GENERAL').find((m) => m.text === 'Premature announcement')).toBeUndefined();
  expect(receiver.requests.filter((r) => r.body.includes(goalId))).toHaveLength(0);
});

test('an attempt that fails after Slack took the message is retried by Temporal without a second post', async () => {
  const { body } = await engine.http('POST', '/v1/goals', { title: 'Retried announcement', kind: 'note' });
  const goalId = body.goalId;
  crashAfterNextPost = true;
  const postApproval = await pendingApproval(goalId, 'post');
  await engine.http('POST', `/v1/approvals/${postApproval.approvalId}/decision`, { decision: 'approve' });
  const hookApproval = await pendingApproval(goalId, 'notify');
  await engine.http('POST', `/v1/approvals/${hookApproval.approvalId}/decision`, { decision: 'approve' });
  const done = await engine.waitForGoal(goalId, (g) => g.status === 'completed');

  expect(crashAfterNextPost).toBe(false);
  expect(slack.callsOf('chat.postMessage').filter((c) => c.args.text === 'Retried announcement')).toHaveLength(1);
  expect(slack.messagesIn('C0GENERAL').filter((m) => m.text === 'Retried announcement')).toHaveLength(1);
  const step = done.plan.steps.find((s: any) => s.id === 'post');
  expect(step.output).toMatchObject({ delivery: 'found-earlier-post' });
  const effect = await engine.db.prisma.sideEffect.findFirstOrThrow({ where: { goalId, kind: 'slack.post' } });
  expect(effect).toMatchObject({ status: 'committed', attempts: 2 });
  expect(receiver.requests.filter((r) => r.body.includes(goalId))).toHaveLength(1);
});
