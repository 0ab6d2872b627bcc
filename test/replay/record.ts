/**
 * `npm run replay:record`: runs one goal of each shape through the whole
 * engine and writes its Temporal history under test/replay/histories/. Keep
 * the files once committed: every later version of goalWorkflow must replay
 * them (test/replay/replay.test.ts), which is what makes a change safe for
 * goals already in flight. Add new ones; do not re-record old ones.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import globalSetup from '../global-setup';
import { goalModels } from '../../commands/goals';
import { loadConfig } from '../../config';
import { createModelGateway } from '../../models/gateway';
import { startEngine, type TestEngine } from '../helpers/engine';
import { startOpenAIStandin } from '../helpers/openai-standin';

const OUT = path.join(__dirname, 'histories');
/**
 * Bump when goalWorkflow changes shape (a new patched() branch, a new step):
 * new histories are written as <shape>-<tag>.json beside the old ones, and
 * files that exist are never overwritten. v1 histories carry no tag.
 */
const RECORD_TAG = 'v8-finish-goal';
// (The *-v7-decision-after-accept emails were recorded by the code of 829bdae: the lean path with decisions
// recorded once Temporal holds their acceptance, the generation just before v8.)
/** The tag of histories of goals started with a model configured (budget reservations). */
const MODEL_RECORD_TAG = 'v5-model-budget';
/** Goals that pin a policy, planned by a model (recipient guard), replanned after a rejection with a comment. */
const POLICY_RECORD_TAG = 'v6-policy-replan';

async function decideFirst(engine: TestEngine, goalId: string, body: Record<string, unknown>) {
  const waiting = await engine.waitForGoal(goalId, (g) => g.status === 'awaiting_approval');
  await engine.http('POST', `/v1/approvals/${waiting.approvals[0].approvalId}/decision`, body);
}

async function run() {
  await globalSetup();
  const engine = await startEngine();
  try {
    await engine.startWorker();
    const shapes: {
      name: string;
      goal: Record<string, unknown>;
      act?: (goalId: string) => Promise<void>;
      final: string;
    }[] = [
      {
        name: 'note-completed',
        goal: { title: 'Summarize the week', kind: 'note', input: { text: 'Invoices went out. Acme paid.' } },
        final: 'completed',
      },
      {
        name: 'email-approved-with-edits',
        goal: { title: 'Email ada@example.com a thank-you note for the referral' },
        act: (id) => decideFirst(engine, id, { decision: 'approve', edits: { body: 'Thank you, Ada!' } }),
        final: 'completed',
      },
      {
        name: 'email-rejected',
        goal: { title: 'Email ken@example.com about the invoice delay' },
        // Without a comment: by the default policy a comment now leads to a new plan (the v6 shape records that).
        act: (id) => decideFirst(engine, id, { decision: 'reject' }),
        final: 'failed',
      },
      {
        name: 'email-cancelled',
        goal: { title: 'Email bob@example.com about the newsletter' },
        act: async (id) => {
          await engine.waitForGoal(id, (g) => g.status === 'awaiting_approval');
          await engine.http('POST', `/v1/goals/${id}/cancel`, { reason: 'not needed' });
        },
        final: 'cancelled',
      },
      { name: 'over-budget', goal: { title: 'Email cy@example.com a hello', budgetUsd: 0.001 }, final: 'failed' },
    ];
    for (const shape of shapes) {
      const file = path.join(OUT, `${shape.name}-${RECORD_TAG}.json`);
      if (existsSync(file)) {
        console.log(`kept ${path.basename(file)} (already recorded)`);
        continue;
      }
      const { body } = await engine.http('POST', '/v1/goals', shape.goal);
      await shape.act?.(body.goalId);
      await engine.waitForGoal(body.goalId, (g) => g.status === shape.final);
      const handle = engine.temporal.client.workflow.getHandle(body.workflowId);
      await handle.result().catch(() => undefined);
      const history = await handle.fetchHistory();
      await writeFile(file, historyToJSON(history));
      console.log(`recorded ${path.basename(file)} (${history.events?.length} events)`);
    }
  } finally {
    await engine.close();
  }
  await recordModelShapes();
  await recordPolicyShapes();
}

/**
 * Goals started with a model configured: the model plans and drafts (a local
 * server speaking the chat-completions protocol answers), and the budget is
 * kept by reservations — this one stops at "raise the budget" first.
 */
async function recordModelShapes() {
  const file = path.join(OUT, `email-model-budget-raised-${MODEL_RECORD_TAG}.json`);
  if (existsSync(file)) {
    console.log(`kept ${path.basename(file)} (already recorded)`);
    return;
  }
  const standin = await startOpenAIStandin({
    chat: (body) => {
      const name = (body.response_format as { json_schema?: { name?: string } } | undefined)?.json_schema?.name;
      if (name !== 'keel_plan') return JSON.stringify({ subject: 'Thank you', body: 'Thank you, Di!' });
      const to = 'di@example.com';
      return JSON.stringify({
        rationale: 'Draft, ask, send.',
        steps: [
          {
            id: 'draft',
            tool: 'email.draft',
            title: 'Draft',
            rationale: '',
            inputs: { to, purpose: 'thanks' },
            dependsOn: [],
          },
          {
            id: 'send',
            tool: 'email.send',
            title: 'Send',
            rationale: '',
            inputs: { to, draft: { fromStep: 'draft' } },
            dependsOn: ['draft'],
          },
        ],
      });
    },
  });
  const config = loadConfig({ OPENAI_BASE_URL: standin.baseURL, OPENAI_API_KEY: 'record' });
  const engine = await startEngine({ settings: { models: goalModels(config) } });
  try {
    await engine.startWorker({ models: createModelGateway(config) });
    const { body } = await engine.http('POST', '/v1/goals', { title: 'Thank Di', budgetUsd: 0.001 });
    for (const stepId of ['plan', 'send']) {
      const waiting = await engine.waitForGoal(body.goalId, (g) =>
        g.approvals.some((a: { stepId: string; status: string }) => a.stepId === stepId && a.status === 'pending'),
      );
      const approval = waiting.approvals.find((a: { stepId: string }) => a.stepId === stepId);
      await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, { decision: 'approve' });
    }
    await engine.waitForGoal(body.goalId, (g) => g.status === 'completed');
    const handle = engine.temporal.client.workflow.getHandle(body.workflowId);
    await handle.result();
    const history = await handle.fetchHistory();
    await writeFile(file, historyToJSON(history));
    console.log(`recorded ${path.basename(file)} (${history.events?.length} events)`);
  } finally {
    await engine.close();
    await standin.close();
  }
}

/**
 * A goal started with a policy pinned and a model configured: the model's
 * plan passes the recipient guard, the operator rejects the send with a
 * comment, the goal replans once with it (patch keel-replan-after-start),
 * and the second draft is approved and sent.
 */
async function recordPolicyShapes() {
  const file = path.join(OUT, `email-model-replanned-${POLICY_RECORD_TAG}.json`);
  if (existsSync(file)) {
    console.log(`kept ${path.basename(file)} (already recorded)`);
    return;
  }
  let drafts = 0;
  const standin = await startOpenAIStandin({
    chat: (body) => {
      const name = (body.response_format as { json_schema?: { name?: string } } | undefined)?.json_schema?.name;
      if (name !== 'keel_plan')
        return JSON.stringify({ subject: 'Thank you', body: `Thank you, Di! (draft ${++drafts})` });
      const to = 'di@example.com';
      const revision = JSON.stringify(body.messages).includes('rejected step') ? { revision: 'warmer' } : {};
      return JSON.stringify({
        rationale: 'Draft, ask, send.',
        steps: [
          {
            id: 'draft',
            tool: 'email.draft',
            title: 'Draft',
            rationale: '',
            inputs: { to, purpose: 'thanks', ...revision },
            dependsOn: [],
          },
          {
            id: 'send',
            tool: 'email.send',
            title: 'Send',
            rationale: '',
            inputs: { to, draft: { fromStep: 'draft' } },
            dependsOn: ['draft'],
          },
        ],
      });
    },
  });
  const config = loadConfig({ OPENAI_BASE_URL: standin.baseURL, OPENAI_API_KEY: 'record' });
  const engine = await startEngine({ settings: { models: goalModels(config), policy: config.KEEL_POLICY } });
  try {
    await engine.startWorker({ models: createModelGateway(config) });
    const { body } = await engine.http('POST', '/v1/goals', { title: 'Thank di@example.com for the referral' });
    let decided: string | undefined;
    for (const decision of [{ decision: 'reject', comment: 'Make it warmer' }, { decision: 'approve' }]) {
      const waiting = await engine.waitForGoal(body.goalId, (g) =>
        g.approvals.some(
          (a: { approvalId: string; status: string }) => a.status === 'pending' && a.approvalId !== decided,
        ),
      );
      const approval = waiting.approvals.find((a: { status: string }) => a.status === 'pending');
      decided = approval.approvalId;
      await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, decision);
    }
    await engine.waitForGoal(body.goalId, (g) => g.status === 'completed');
    const handle = engine.temporal.client.workflow.getHandle(body.workflowId);
    await handle.result();
    const history = await handle.fetchHistory();
    await writeFile(file, historyToJSON(history));
    console.log(`recorded ${path.basename(file)} (${history.events?.length} events)`);
  } finally {
    await engine.close();
    await standin.close();
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
