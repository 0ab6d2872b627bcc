/**
 * slack.post through the real `@slack/web-api` WebClient against a local
 * stand-in for Slack's Web API (test/helpers/slack-standin.ts), in Temporal's
 * MockActivityEnvironment, over a scratch PostgreSQL database.
 */
import { ApplicationFailure } from '@temporalio/common';
import { defaultConfig } from '../../config';
import { createSlackConnector, SLACK_FAULT_AFTER_POST, type SlackConnector } from '../../connectors/slack';
import type { FaultHooks } from '../../lib/faults';
import type { MemoryService } from '../../memory/service';
import { saveArtifact } from '../../state/artifacts';
import { recordIntent } from '../../state/side-effects';
import { createToolActivities } from '../../tools/activities';
import { slackPost } from '../../tools/registry';
import { describeApproval } from '../../tools/spec';
import { requiresApproval, validatePlan } from '../../policy';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { createTestEmail, createTestMemory } from '../helpers/engine';
import { startSlackStandin, type SlackStandin } from '../helpers/slack-standin';
import { failureOf, goalWithSteps, runAttempt } from '../helpers/tool-goal';

let db: TestDatabase;
let memory: MemoryService;
let slack: SlackStandin;

beforeAll(async () => {
  [db, slack] = await Promise.all([createTestDatabase(), startSlackStandin()]);
  memory = createTestMemory(db.prisma);
});
afterAll(async () => {
  await memory?.store.close();
  await slack?.close();
  await db?.drop();
});

function connector(over: { token?: string; defaultChannel?: string; faults?: FaultHooks } = {}): SlackConnector {
  return createSlackConnector({
    token: 'token' in over ? over.token : slack.token,
    apiUrl: slack.apiUrl,
    defaultChannel: 'defaultChannel' in over ? over.defaultChannel : 'C0GENERAL',
    timeoutMs: 2000,
    prisma: db.prisma,
    faults: over.faults,
  });
}

function activities(slackConnector: SlackConnector | undefined) {
  return createToolActivities({
    prisma: db.prisma,
    email: createTestEmail(db.prisma, undefined),
    memory,
    workingSetTokens: defaultConfig().KEEL_WORKING_SET_TOKENS,
    operatorName: 'Test Operator',
    slack: slackConnector,
  });
}

const postGoal = (title: string) => goalWithSteps(db.prisma, title, [{ id: 'post', tool: 'slack.post' }]);
const ledger = (goalId: string) => db.prisma.sideEffect.findMany({ where: { goalId } });
const keyed = (key: string) =>
  slack.messagesIn('C0GENERAL').filter((m) => m.metadata?.event_payload?.key === key && !m.deleted);

test('posts once with chat.postMessage, the key in its metadata; a retry returns the recorded ts', async () => {
  const acts = activities(connector());
  const g = await postGoal('Tell the team we shipped');
  const input = g.input('post', { text: 'We shipped the invoice fix :tada:' });
  const key = `${g.workflowId}:v1:post`;

  const first = await runAttempt(acts.postSlackMessage, input, 1);
  const second = await runAttempt(acts.postSlackMessage, input, 2);

  expect(slackPost.output.safeParse(first.output).success).toBe(true);
  expect(first.output).toMatchObject({ channel: 'C0GENERAL', delivery: 'posted', idempotencyKey: key });
  expect(second.output).toMatchObject({ ts: first.output.ts, delivery: 'already-posted' });
  const posts = slack.callsOf('chat.postMessage').filter((c) => c.args.text === 'We shipped the invoice fix :tada:');
  expect(posts).toHaveLength(1);
  expect(posts[0].headers.authorization).toBe(`Bearer ${slack.token}`);
  expect(posts[0].args.metadata).toEqual({ event_type: 'keel_side_effect', event_payload: { key } });
  expect(keyed(key)).toHaveLength(1);
  expect(await ledger(g.goalId)).toMatchObject([
    { kind: 'slack.post', status: 'committed', attempts: 2, result: { channel: 'C0GENERAL', ts: first.output.ts } },
  ]);
});

test('a crash after Slack took the message and before the commit: the retry finds it and posts nothing', async () => {
  let crashes = 1;
  const faults: FaultHooks = {
    async hit(point) {
      if (point === SLACK_FAULT_AFTER_POST && crashes-- > 0) throw new Error('worker died (simulated)');
    },
  };
  const acts = activities(connector({ faults }));
  const g = await postGoal('Announce the offsite');
  // By name: the look-up resolves it to the channel id first, as conversations.history takes ids only.
  const input = g.input('post', { channel: '#general', text: 'Offsite is on the 12th' });
  const key = `${g.workflowId}:v1:post`;
  const historyBefore = slack.callsOf('conversations.history').length;

  await expect(runAttempt(acts.postSlackMessage, input, 1)).rejects.toThrow('worker died');
  expect(keyed(key)).toHaveLength(1);
  expect((await ledger(g.goalId))[0]).toMatchObject({ status: 'intent', attempts: 1 });

  const retried = await runAttempt(acts.postSlackMessage, input, 2);
  expect(retried.output).toMatchObject({ delivery: 'found-earlier-post', ts: keyed(key)[0].ts });
  expect(keyed(key)).toHaveLength(1);
  expect(slack.callsOf('chat.postMessage').filter((c) => c.args.text === 'Offsite is on the 12th')).toHaveLength(1);
  expect(slack.callsOf('conversations.history').length).toBe(historyBefore + 1);
  expect(slack.callsOf('conversations.history').at(-1)!.args).toMatchObject({
    channel: 'C0GENERAL',
    include_all_metadata: 'true',
  });
  expect((await ledger(g.goalId))[0]).toMatchObject({ status: 'committed', attempts: 2 });

  // And a third attempt is answered from the ledger without asking Slack anything.
  const callsBefore = slack.calls.length;
  expect((await runAttempt(acts.postSlackMessage, input, 3)).output.delivery).toBe('already-posted');
  expect(slack.calls.length).toBe(callsBefore);
});

test('an attempt that died before posting: the retry looks, finds nothing, and posts once', async () => {
  const acts = activities(connector());
  const g = await postGoal('Remind the team');
  const key = `${g.workflowId}:v1:post`;
  await recordIntent(db.prisma, { idempotencyKey: key, goalId: g.goalId, stepId: 'post', kind: 'slack.post' }, {});
  const result = await runAttempt(acts.postSlackMessage, g.input('post', { text: 'Timesheets due today' }), 2);
  expect(result.output.delivery).toBe('posted');
  expect(keyed(key)).toHaveLength(1);
});

test('when the history cannot be read after a crash, the post fails as SlackPostUnverified and is not repeated', async () => {
  const acts = activities(connector());
  const g = await postGoal('Post the numbers');
  const key = `${g.workflowId}:v1:post`;
  await recordIntent(db.prisma, { idempotencyKey: key, goalId: g.goalId, stepId: 'post', kind: 'slack.post' }, {});
  slack.setMissingScopes(['conversations.history']);
  try {
    const err = await failureOf(runAttempt(acts.postSlackMessage, g.input('post', { text: 'Q3 numbers' }), 2));
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'SlackPostUnverified', nonRetryable: true });
    expect(err.message).toContain('missing_scope');
    expect(keyed(key)).toHaveLength(0);
  } finally {
    slack.setMissingScopes([]);
  }
});

test('without SLACK_BOT_TOKEN the activity fails non-retryably naming the setting, and calls nothing', async () => {
  const g = await postGoal('Post without a token');
  const callsBefore = slack.calls.length;
  for (const acts of [activities(connector({ token: undefined })), activities(undefined)]) {
    const err = await failureOf(runAttempt(acts.postSlackMessage, g.input('post', { text: 'hello' })));
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'SlackNotConfigured', nonRetryable: true });
    expect(err.message).toContain('SLACK_BOT_TOKEN');
  }
  expect(slack.calls.length).toBe(callsBefore);
  expect(await ledger(g.goalId)).toHaveLength(0);
});

test('with no channel in the step and no SLACK_CHANNEL, it fails naming SLACK_CHANNEL', async () => {
  const g = await postGoal('Post nowhere');
  const err = await failureOf(
    runAttempt(activities(connector({ defaultChannel: undefined })).postSlackMessage, g.input('post', { text: 'x' })),
  );
  expect(err).toMatchObject({ type: 'SlackChannelMissing', nonRetryable: true });
  expect(err.message).toContain('SLACK_CHANNEL');
});

test('a rate limit retries after Slack’s Retry-After; a refusal does not retry; a 5xx does', async () => {
  const acts = activities(connector());
  const g = await postGoal('Post under load');
  const input = g.input('post', { text: 'load test' });

  slack.script('chat.postMessage', { status: 429, headers: { 'retry-after': '7' } });
  const limited = await failureOf(runAttempt(acts.postSlackMessage, input, 1));
  expect(limited).toMatchObject({ type: 'SlackRateLimited', nonRetryable: false, nextRetryDelay: 7000 });

  slack.script('chat.postMessage', { status: 503, body: 'upstream down' });
  expect(await failureOf(runAttempt(acts.postSlackMessage, input, 2))).toMatchObject({
    type: 'SlackUnavailable',
    nonRetryable: false,
  });

  const other = await postGoal('Post to a missing channel');
  const refused = await failureOf(
    runAttempt(acts.postSlackMessage, other.input('post', { channel: 'C0NOPE', text: 'hi' })),
  );
  expect(refused).toMatchObject({ type: 'SlackRejected', nonRetryable: true });
  expect(refused.message).toContain('channel_not_found');
  expect((await ledger(other.goalId))[0]).toMatchObject({ status: 'failed' });

  // After the transient failures the same step posts once.
  expect((await runAttempt(acts.postSlackMessage, input, 3)).output.delivery).toBe('posted');
  expect(keyed(`${g.workflowId}:v1:post`)).toHaveLength(1);
});

test('a draft from an earlier step is posted as its text', async () => {
  const acts = activities(connector());
  const g = await goalWithSteps(db.prisma, 'Post the draft', [{ id: 'post', tool: 'slack.post' }]);
  const ref = await saveArtifact(db.prisma, {
    goalId: g.goalId,
    stepId: 'draft',
    kind: 'draft',
    title: 'Update',
    content: 'Weekly update: all green.',
  });
  const result = await runAttempt(acts.postSlackMessage, g.input('post', { draft: { ref, preview: 'Weekly' } }));
  expect(result.output.artifactId).toBe(ref);
  expect(slack.messagesIn('C0GENERAL').at(-1)!.text).toBe('Weekly update: all green.');
});

test('compensation deletes the posted message; a retried compensation changes nothing more', async () => {
  const acts = activities(connector());
  const g = await postGoal('Post, then take it back');
  const posted = await runAttempt(acts.postSlackMessage, g.input('post', { text: 'Oops, wrong channel' }));
  const input = { goalId: g.goalId, planVersion: 1, stepId: 'post', output: posted.output, reason: 'goal cancelled' };

  await acts.deleteSlackMessage(input);
  await acts.deleteSlackMessage(input);

  expect(slack.callsOf('chat.delete').filter((c) => c.args.ts === posted.output.ts)).toHaveLength(2);
  expect(keyed(posted.output.idempotencyKey as string)).toHaveLength(0);
  const step = await db.prisma.step.findFirstOrThrow({ where: { goalId: g.goalId, stepId: 'post' } });
  expect(step.status).toBe('compensated');
  const events = await db.prisma.event.findMany({ where: { goalId: g.goalId, type: 'step.compensated' } });
  expect(events.map((e) => e.data)).toEqual([
    {
      stepId: 'post',
      idempotencyKey: posted.output.idempotencyKey,
      undone: `chat.delete C0GENERAL ${posted.output.ts}`,
      reason: 'goal cancelled',
    },
  ]);
  expect((await ledger(g.goalId))[0].compensatedAt).not.toBeNull();
});

describe('the spec', () => {
  test('always needs approval; the approval shows the channel and text, and the text can be edited', () => {
    expect(requiresApproval({ tool: 'slack.post' })).toBe(true);
    const described = describeApproval(
      slackPost,
      { channel: 'general', text: 'We shipped!\nDetails…' },
      undefined,
      't',
    );
    expect(described).toEqual({
      ok: true,
      summary: 'Post to #general: "We shipped!"',
      proposed: { channel: 'general', text: 'We shipped!\nDetails…' },
    });
    const edits = slackPost.approval!.edits!.parse({ text: 'We shipped, finally!' });
    expect(slackPost.approval!.applyEditsToInputs!({ text: 'We shipped!' }, edits)).toEqual({
      text: 'We shipped, finally!',
    });
    expect(slackPost.approval!.edits!.safeParse({ text: '' }).success).toBe(false);
    expect(slackPost.approval!.edits!.safeParse({ channel: 'C1' }).success).toBe(false);
  });

  test('a plan must give the text or a draft, one of the two, and a channel without spaces', () => {
    expect(slackPost.input.safeParse({ text: 'hi' }).success).toBe(true);
    expect(slackPost.input.safeParse({}).success).toBe(false);
    expect(slackPost.input.safeParse({ text: 'hi', draft: { ref: 'a' } }).success).toBe(false);
    const problems = validatePlan(
      [
        {
          id: 'p',
          tool: 'slack.post',
          title: '',
          rationale: '',
          inputs: { channel: 'two words', text: 'x' },
          dependsOn: [],
        },
      ],
      { budgetUsd: 1, spentUsd: 0 },
    );
    expect(problems.map((p) => p.code)).toEqual(['invalid_input']);
  });
});
