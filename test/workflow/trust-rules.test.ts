/**
 * Trust that grows (issue 9, item 8): after N unedited approvals of one tool
 * to one audience, a rule is suggested; once the operator accepts it, such
 * steps are approved by the rule (recorded as the rule's decision, named in
 * the explanation); it can be revoked, and edited approvals or another
 * audience never count. Real dev server, PostgreSQL, SMTP.
 */
import { startEngine, type TestEngine } from '../helpers/engine';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine();
  await engine.startWorker();
});
afterAll(async () => {
  await engine?.close();
});

async function emailGoal(to: string) {
  const { body } = await engine.http('POST', '/v1/goals', { title: `Email ${to} a thank-you note`, input: { to } });
  return body.goalId as string;
}

async function decideAndFinish(goalId: string, decision: Record<string, unknown>) {
  const waiting = await engine.waitForGoal(goalId, (g) => g.approvals.some((a: any) => a.status === 'pending'));
  const approval = waiting.approvals.find((a: any) => a.status === 'pending');
  expect((await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, decision)).status).toBe(200);
  return engine.waitForGoal(goalId, (g) => g.status === 'completed');
}

const rules = async (status?: string) =>
  (await engine.http('GET', `/v1/trust-rules${status ? `?status=${status}` : ''}`)).body.rules as any[];

test('three unedited approvals to one person suggest a rule; accepted, it approves the next send; revoked, it stops', async () => {
  const to = 'trusted@example.com';
  for (let i = 0; i < 2; i++) await decideAndFinish(await emailGoal(to), { decision: 'approve' });
  expect((await rules()).filter((r) => r.audience === to)).toEqual([]);
  await decideAndFinish(await emailGoal(to), { decision: 'approve' });
  const [suggested] = (await rules('suggested')).filter((r) => r.audience === to);
  expect(suggested).toMatchObject({
    tool: 'email.send',
    audience: to,
    text: `auto-approve email.send to ${to}`,
    status: 'suggested',
    evidence: 3,
  });

  // Suggested is not accepted: the next one still waits for a person.
  const waitingGoal = await emailGoal(to);
  await engine.waitForGoal(waitingGoal, (g) => g.status === 'awaiting_approval');
  const accepted = await engine.http('POST', `/v1/trust-rules/${suggested.id}/accept`);
  expect(accepted.body.rule).toMatchObject({ status: 'accepted', decidedBy: 'operator:test' });
  await decideAndFinish(waitingGoal, { decision: 'approve' });

  // Accepted: the next send to the same person is approved by the rule, and says so.
  const sentBefore = engine.smtp.messages.filter((m) => m.to.includes(to)).length;
  const byRule = await emailGoal(to);
  const done = await engine.waitForGoal(byRule, (g) => g.status === 'completed');
  expect(done.approvals[0]).toMatchObject({
    status: 'approved',
    actor: `rule:${suggested.id}`,
    channel: 'rule',
    comment: `approved by the rule "auto-approve email.send to ${to}"`,
  });
  expect(engine.smtp.messages.filter((m) => m.to.includes(to)).length).toBe(sentBefore + 1);
  const explain = (await engine.http('GET', `/v1/goals/${byRule}/explain`)).body;
  const send = explain.actions.find((a: any) => a.stepId === 'send');
  expect(send.approvals[0]).toMatchObject({ actor: `rule:${suggested.id}`, channel: 'rule' });
  // A rule's approvals are not a person's: they do not suggest or count as trust themselves.
  const metrics = (await engine.http('GET', '/v1/metrics')).body;
  expect(JSON.stringify(metrics)).toBeDefined();

  // Another audience (one more recipient) is not covered.
  const wider = await emailGoal(`${to}, other@example.com`);
  await engine.waitForGoal(wider, (g) => g.status === 'awaiting_approval');
  await engine.http('POST', `/v1/goals/${wider}/cancel`, { reason: 'test' });

  // Revoked: back to asking. Revoking twice is a 409; an unknown rule a 404.
  expect((await engine.http('POST', `/v1/trust-rules/${suggested.id}/revoke`)).body.rule.status).toBe('revoked');
  expect((await engine.http('POST', `/v1/trust-rules/${suggested.id}/revoke`)).status).toBe(409);
  expect((await engine.http('POST', '/v1/trust-rules/trust-nope/accept')).status).toBe(404);
  const asks = await emailGoal(to);
  await engine.waitForGoal(asks, (g) => g.status === 'awaiting_approval');
  await engine.http('POST', `/v1/goals/${asks}/cancel`, { reason: 'test' });
  const types = (await engine.http('GET', `/v1/goals/${byRule}/events`)).body.events.map((e: any) => e.type);
  expect(types).toContain('approval.approved');
});

test('approvals with edits do not grow trust', async () => {
  const to = 'edited@example.com';
  for (let i = 0; i < 3; i++)
    await decideAndFinish(await emailGoal(to), { decision: 'approve', edits: { body: `Thanks! (${i})` } });
  expect((await rules()).filter((r) => r.audience === to)).toEqual([]);
});

test('the inbox shows a suggested rule, and accepting it there makes it the operator’s (CSRF-checked form)', async () => {
  const to = 'inbox-trust@example.com';
  for (let i = 0; i < 3; i++) await decideAndFinish(await emailGoal(to), { decision: 'approve' });
  const [rule] = (await rules('suggested')).filter((r) => r.audience === to);
  const base = engine.apiUrl;
  const login = await fetch(`${base}/inbox/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ apiKey: engine.apiKey }),
    redirect: 'manual',
  });
  const cookie = String(login.headers.get('set-cookie')).split(';')[0];
  const page = await (await fetch(`${base}/inbox`, { headers: { cookie } })).text();
  expect(page).toContain('Suggested rules');
  expect(page).toContain(`auto-approve email.send to ${to}`);
  const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1];
  const post = (body: Record<string, string>) =>
    fetch(`${base}/inbox/trust/${encodeURIComponent(rule.id)}`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(body),
      redirect: 'manual',
    });
  expect((await post({ action: 'accept' })).status).toBe(403);
  expect((await rules('suggested')).some((r) => r.id === rule.id)).toBe(true);
  const accepted = await post({ action: 'accept', csrf });
  expect(accepted.status).toBe(303);
  expect((await rules('accepted')).find((r) => r.id === rule.id)).toMatchObject({ decidedBy: 'inbox:operator' });
  await engine.http('POST', `/v1/trust-rules/${rule.id}/revoke`);
});
