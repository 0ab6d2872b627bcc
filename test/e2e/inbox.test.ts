/**
 * The approval inbox in a real browser (issue 9, item 5): Debian's chromium
 * driven by playwright-core against the real API, a Temporal dev server,
 * PostgreSQL, a worker and the test SMTP server. Screenshots land in
 * .keel/test/screenshots/ (git-ignored).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { launchBrowser, type TestBrowser } from '../helpers/browser';
import { startEngine, type TestEngine } from '../helpers/engine';

const SHOTS = path.resolve(__dirname, '..', '..', '.keel', 'test', 'screenshots');

let engine: TestEngine;
let context: BrowserContext;
let page: Page;
let browser: TestBrowser | undefined;
const dialogs: string[] = [];

jest.setTimeout(120_000);

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  engine = await startEngine();
  await engine.startWorker();
  browser = await launchBrowser({ width: 1100, height: 900 });
  ({ context, page } = browser);
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
});

afterAll(async () => {
  await browser?.close();
  await engine?.close();
});

const url = (p: string) => `${engine.apiUrl}${p}`;

async function emailGoal(to: string, purpose?: string): Promise<{ goalId: string; approval: any }> {
  const { body } = await engine.http('POST', '/v1/goals', {
    title: `Email ${to} about the launch`,
    input: { to, ...(purpose ? { purpose } : {}) },
  });
  const goal = await engine.waitForGoal(body.goalId, (g) => g.approvals.some((a: any) => a.status === 'pending'));
  return { goalId: body.goalId, approval: goal.approvals.find((a: any) => a.status === 'pending') };
}

const cardOf = (approvalId: string) => page.locator(`article[data-approval-id="${approvalId}"]`);

async function sessionCookie(): Promise<string> {
  const c = (await context.cookies(url('/inbox'))).find((x) => x.name === 'keel_inbox');
  if (!c) throw new Error('no session cookie');
  return `${c.name}=${c.value}`;
}

test('a page without a session redirects to the sign-in form; a wrong key is refused', async () => {
  await page.goto(url('/inbox'));
  expect(new URL(page.url()).pathname).toBe('/inbox/login');
  await page.getByLabel('API key').fill('not-the-key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert').textContent()).resolves.toContain('not the API key');
  const goalPage = await fetch(url('/inbox/goals/anything'), { redirect: 'manual' });
  expect(goalPage.status).toBe(303);
  expect(goalPage.headers.get('location')).toBe('/inbox/login');
  expect((await fetch(url('/inbox/pending.json'))).status).toBe(401);
});

test('signing in with the API key sets an HttpOnly, SameSite=Strict session cookie for /inbox', async () => {
  await page.goto(url('/inbox/login'));
  await page.getByLabel('API key').fill(engine.apiKey);
  await page.keyboard.press('Enter');
  await page.waitForURL(url('/inbox'));
  await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Approvals waiting for you');
  const cookie = (await context.cookies(url('/inbox'))).find((c) => c.name === 'keel_inbox');
  expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/inbox' });
});

test('a new approval appears without a reload; edit-and-approve sends the edited body and the goal finishes', async () => {
  await page.goto(url('/inbox'));
  const { goalId, approval } = await emailGoal('ada@example.com');
  // Live: the card arrives by polling, no navigation.
  const card = cardOf(approval.approvalId);
  await card.waitFor({ timeout: 20_000 });
  await expect(page.locator('#live').textContent()).resolves.toContain('new approval');
  await expect(card.getByLabel('Subject').inputValue()).resolves.toBe(approval.shown.proposed.subject);
  await expect(card.textContent()).resolves.toContain(approval.rationale);
  await card.getByText(/^Provenance/).click();
  await page.screenshot({ path: path.join(SHOTS, 'inbox.png') });

  const edited = 'Hi Ada,\nThank you for the referral, edited in the inbox.\nBest, Test Operator';
  await card.getByLabel('Body').fill(edited);
  await card.getByRole('button', { name: 'Approve with my edits' }).click();
  await page.waitForURL(/notice=edited/);
  await expect(page.locator('#live').textContent()).resolves.toContain('Approved with your edits.');
  await expect(cardOf(approval.approvalId).count()).resolves.toBe(0);

  await engine.waitForGoal(goalId, (g) => g.status === 'completed');
  const sent = engine.smtp.messages.find((m) => m.to.includes('ada@example.com'));
  expect(sent?.raw.replace(/=\r?\n/g, '').replace(/\r\n/g, '\n')).toContain(
    'Thank you for the referral, edited in the inbox.',
  );
  const row = await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: approval.approvalId } });
  expect(row).toMatchObject({ channel: 'inbox', actor: 'inbox:operator', decidedHash: approval.shownHash });
  expect(row.edits).toEqual({ body: edited });
  expect(row.decisionKey).toMatch(/^inbox:/);

  // The goal page, one click away from the inbox: explanation and timeline in words.
  await page.goto(url(`/inbox/goals/${goalId}`));
  await expect(page.locator('#goal-status').textContent()).resolves.toContain('This goal is completed');
  const text = (await page.locator('main').textContent()) ?? '';
  expect(text).toContain('What Keel did and why');
  expect(text).toContain('Approved by inbox:operator through inbox');
  expect(text).toContain('with edits to body');
  expect(text).toContain('The goal completed.');
  expect(text).not.toContain('{"');
  await page.screenshot({ path: path.join(SHOTS, 'goal.png'), fullPage: true });
});

test('reject with a reason, from the keyboard', async () => {
  const { approval } = await emailGoal('bob@example.com');
  await page.goto(url('/inbox'));
  const reason = cardOf(approval.approvalId).getByLabel('Reason for rejecting');
  await reason.fill('Bob asked not to be emailed');
  await reason.press('Enter');
  await page.waitForURL(/notice=rejected/);
  const row = await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: approval.approvalId } });
  expect(row).toMatchObject({
    status: 'rejected',
    comment: 'Bob asked not to be emailed',
    channel: 'inbox',
    actor: 'inbox:operator',
  });
});

test('approve a selected group of two; both goals finish', async () => {
  const [a, b] = await Promise.all([emailGoal('carol@example.com'), emailGoal('dan@example.com')]);
  await page.goto(url('/inbox'));
  const group = page.locator('section.group[data-kind="email.send"]');
  for (const { approval } of [a, b]) await cardOf(approval.approvalId).getByRole('checkbox').check();
  await group.getByRole('button', { name: 'Approve selected in email.send' }).click();
  await page.waitForURL(/notice=batch&n=2/);
  await expect(page.locator('#live').textContent()).resolves.toContain('Approved 2 in one go.');
  await Promise.all([a, b].map(({ goalId }) => engine.waitForGoal(goalId, (g) => g.status === 'completed')));
  const rows = await engine.db.prisma.approval.findMany({
    where: { id: { in: [a.approval.approvalId, b.approval.approvalId] } },
  });
  expect(rows.map((r) => [r.status, r.channel])).toEqual([
    ['approved', 'inbox'],
    ['approved', 'inbox'],
  ]);
});

test('a POST without the CSRF token is 403 and decides nothing', async () => {
  const { approval } = await emailGoal('eve@example.com');
  const res = await fetch(url(`/inbox/approvals/${approval.approvalId}/decision`), {
    method: 'POST',
    headers: { cookie: await sessionCookie(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ action: 'approve', submission: 'a-forged-one', shownHash: approval.shownHash }),
    redirect: 'manual',
  });
  expect(res.status).toBe(403);
  const wrong = await fetch(url('/inbox/groups/decision'), {
    method: 'POST',
    headers: { cookie: await sessionCookie(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: 'guessed', submission: 'a-forged-two', ids: approval.approvalId }),
    redirect: 'manual',
  });
  expect(wrong.status).toBe(403);
  const row = await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: approval.approvalId } });
  expect(row.status).toBe('pending');
});

test('script-looking and SQL-looking text in a draft shows literally', async () => {
  const hostile = `<script>alert(1)</script> '; DROP TABLE goals; --`;
  const { approval } = await emailGoal('mallory@example.com', hostile);
  await page.goto(url('/inbox'));
  const card = cardOf(approval.approvalId);
  await expect(card.getByLabel('Subject').inputValue()).resolves.toContain(hostile);
  await expect(card.getByLabel('Body').inputValue()).resolves.toContain('<script>alert(1)</script>');
  await expect(card.locator('h3').textContent()).resolves.toContain(hostile);
  await expect(page.locator('script:not([nonce])').count()).resolves.toBe(0);
  await card.screenshot({ path: path.join(SHOTS, 'hostile.png') });
  expect(dialogs).toEqual([]);
  expect(await engine.db.prisma.goal.count()).toBeGreaterThan(0);
});
