/**
 * The Temporal Web UI reads like Keel: a goal's workflow carries its title as
 * the static summary (and a line of details), and each activity it schedules
 * carries the step's title as its summary, read back here the way the UI reads
 * them: from describe() and from the ActivityTaskScheduled events' user metadata
 * (a local activity's, the planner of a goal without a model, from its marker's).
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { SUMMARY_MAX_BYTES } from '../../shared/summary';
import { startEngine, type TestEngine } from '../helpers/engine';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine();
  await engine.startWorker();
});
afterAll(async () => {
  await engine?.close();
});

const uniq = () => Math.random().toString(36).slice(2, 8);

/** The size the server checks: the summary as a JSON payload's data. */
const encodedBytes = (text: string) => Buffer.byteLength(JSON.stringify(text));

/** A local activity's type, from its marker's data. */
function localActivityType(marker: temporal.api.history.v1.IMarkerRecordedEventAttributes): string {
  const data = marker.details?.data?.payloads?.[0];
  return data ? defaultPayloadConverter.fromPayload<{ activity_type: string }>(data as never).activity_type : '';
}

async function workflowMetadata(workflowId: string) {
  const handle = engine.temporal.client.workflow.getHandle(workflowId);
  await handle.result();
  const described = await handle.describe();
  const history = await handle.fetchHistory();
  // Activities, and local activities that carry a summary (the planner of a goal without a model): the
  // UI shows a local activity's summary on its marker.
  const scheduled = (history.events ?? []).filter(
    (e: temporal.api.history.v1.IHistoryEvent) =>
      Boolean(e.activityTaskScheduledEventAttributes) ||
      (e.markerRecordedEventAttributes?.markerName === 'core_local_activity' && e.userMetadata?.summary),
  );
  return {
    summary: await described.staticSummary(),
    details: await described.staticDetails(),
    activities: scheduled.map((e) => ({
      type: e.activityTaskScheduledEventAttributes
        ? e.activityTaskScheduledEventAttributes.activityType!.name!
        : localActivityType(e.markerRecordedEventAttributes!),
      summary: e.userMetadata?.summary
        ? defaultPayloadConverter.fromPayload<string>(e.userMetadata.summary as never)
        : undefined,
    })),
  };
}

test('an approved email goal: the workflow shows its title, every activity its step title', async () => {
  const to = `ui-${uniq()}@example.com`;
  const title = `Email ${to} a thank-you note for the referral`;
  const { body } = await engine.http('POST', '/v1/goals', { title, description: 'Keep it short.' });
  const waiting = await engine.waitForGoal(body.goalId, (g) => g.status === 'awaiting_approval');
  const decided = await engine.http('POST', `/v1/approvals/${waiting.approvals[0].approvalId}/decision`, {
    decision: 'approve',
  });
  expect(decided.status).toBe(200);
  const done = await engine.waitForGoal(body.goalId, (g) => g.status === 'completed');

  const meta = await workflowMetadata(body.workflowId);
  expect(meta.summary).toBe(title);
  expect(meta.details).toContain(`Keel goal ${body.goalId}`);
  expect(meta.details).toContain('kind auto');
  expect(meta.details).toContain('Keep it short.');

  // The planner, then one activity per step, each under the step's own title.
  expect(meta.activities[0]).toEqual({ type: 'planGoal', summary: `Plan "${title}"` });
  const stepTitles: string[] = done.plan.steps.map((s: any) => s.title);
  expect(stepTitles).toEqual([
    `Recall context about ${to}`,
    `Draft the email to ${to}`,
    `Send the email to ${to}`,
    'Record the outcome',
  ]);
  // The decision is recorded by its own activity, named after the step it lets through.
  expect(meta.activities.slice(1).map((a) => a.summary)).toEqual([
    stepTitles[0],
    stepTitles[1],
    `Record the approval: ${stepTitles[2]}`,
    stepTitles[2],
    stepTitles[3],
  ]);
  expect(meta.activities.every((a) => a.summary !== undefined)).toBe(true);
});

test('a rejected email goal: the compensation is listed as undoing its step', async () => {
  const to = `ui-${uniq()}@example.com`;
  const { body } = await engine.http('POST', '/v1/goals', { title: `Email ${to} about the newsletter` });
  const waiting = await engine.waitForGoal(body.goalId, (g) => g.status === 'awaiting_approval');
  await engine.http('POST', `/v1/approvals/${waiting.approvals[0].approvalId}/decision`, { decision: 'reject' });
  await engine.waitForGoal(body.goalId, (g) => g.status === 'failed');

  const meta = await workflowMetadata(body.workflowId);
  expect(meta.summary).toBe(`Email ${to} about the newsletter`);
  const summaries = meta.activities.map((a) => a.summary);
  expect(summaries).toContain(`Draft the email to ${to}`);
  expect(summaries).not.toContain(`Send the email to ${to}`);
  expect(summaries.at(-1)).toBe(`Undo: Draft the email to ${to}`);
});

test("a title far over the server's summary limit is clamped, and the goal still runs", async () => {
  // 480 three-byte characters and a newline: 1,400+ bytes, over the 400 bytes a server enforcing
  // limit.userMetadataSummarySize takes (the dev server here does not enforce it, so only the clamp is checked).
  const title = `${'標'.repeat(240)}\n${'題'.repeat(240)}`;
  const { body } = await engine.http('POST', '/v1/goals', {
    title,
    kind: 'note',
    input: { text: 'A long title must not stall the goal.' },
  });
  expect(body.goalId).toBeDefined();
  await engine.waitForGoal(body.goalId, (g) => g.status === 'completed');

  const meta = await workflowMetadata(body.workflowId);
  expect(meta.summary).toMatch(/^標+…$/);
  expect(encodedBytes(meta.summary!)).toBeLessThanOrEqual(SUMMARY_MAX_BYTES);
  const plan = meta.activities[0];
  expect(plan.type).toBe('planGoal');
  expect(plan.summary).toMatch(/^Plan "標+…$/);
  expect(encodedBytes(plan.summary!)).toBeLessThanOrEqual(SUMMARY_MAX_BYTES);
  expect(meta.activities.slice(1).map((a) => a.summary)).toEqual([
    'Recall related context',
    'Summarize',
    'Record the summary',
  ]);
});
