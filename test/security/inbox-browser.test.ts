/**
 * The inbox in a real browser (issue 10, item 2): SQL-looking and
 * script-looking text is stored exactly as sent and shown literally, in the
 * approval cards (summary, draft, provenance with the memory's text) and on
 * the goal's page, with no script of it running; a page on another site
 * that posts a decision form to the inbox decides nothing; a browser without
 * a session sees only the sign-in form. Debian's chromium, driven by
 * playwright-core, against the real API, Temporal, PostgreSQL and a worker.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { BrowserContext, Page } from 'playwright-core';
import { launchBrowser, type TestBrowser } from '../helpers/browser';
import { startEngine, type TestEngine } from '../helpers/engine';
import { STILL_SETTINGS, snapshot } from './support';

/** Text that would run, break out of its element, or rewrite SQL if anything between the API and the page trusted it. */
const HOSTILE = [
  `<script>window.__pwned = 'script'</script>`,
  `<img src=x onerror="window.__pwned = 'img'">`,
  `"><svg onload="window.__pwned = 'svg'">`,
  `</textarea><script>window.__pwned = 'textarea'</script>`,
  `'; DROP TABLE goals; --`,
  `Robert'); DELETE FROM approvals WHERE ('1'='1`,
  `" OR ""="`,
  `&lt;b&gt;already escaped&lt;/b&gt; &amp;`,
  `<a href="javascript:window.__pwned='link'">click</a>`,
  `{{7*7}} \${7*7} <%= 7*7 %>`,
];

let engine: TestEngine;
let context: BrowserContext;
let page: Page;
let browser: TestBrowser | undefined;
let evil: Server;
const dialogs: string[] = [];

jest.setTimeout(180_000);

beforeAll(async () => {
  engine = await startEngine({ settings: STILL_SETTINGS });
  await engine.startWorker();
  browser = await launchBrowser({ width: 1100, height: 900 });
  ({ context, page } = browser);
  context.on('page', (p) => p.on('dialog', (d) => (dialogs.push(d.message()), void d.dismiss())));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((r) => (evil ? evil.close(() => r()) : r()));
  await engine?.close();
});

const url = (p: string) => `${engine.apiUrl}${p}`;
const uniq = () => randomBytes(3).toString('hex');

async function signIn() {
  await page.goto(url('/inbox/login'));
  if (new URL(page.url()).pathname === '/inbox') return;
  await page.getByLabel('API key').fill(engine.apiKey);
  await page.keyboard.press('Enter');
  await page.waitForURL(url('/inbox'));
}

test('a browser without a session sees only the sign-in form', async () => {
  for (const p of ['/inbox', '/inbox/goals/anything']) {
    await page.goto(url(p));
    expect(new URL(page.url()).pathname).toBe('/inbox/login');
  }
  await expect(page.locator('article').count()).resolves.toBe(0);
});

test('SQL-looking and script-looking text is stored as sent and shown literally in the inbox and on the goal page', async () => {
  const to = `mallory-${uniq()}@example.com`;
  // A memory about the recipient: the draft's provenance shows its text.
  const memory = await engine.http('POST', '/v1/memory', { text: HOSTILE.join(' | '), subject: `contact:${to}` });
  expect(memory.status).toBe(201);
  const goals: { goalId: string; title: string; purpose: string }[] = [];
  for (const [i, text] of HOSTILE.entries()) {
    const title = `Email ${to} about ${text}`;
    const purpose = `${text} (${i})`;
    const { status, body } = await engine.http('POST', '/v1/goals', {
      title,
      description: text,
      input: { to, purpose },
      requestId: `hostile-${uniq()}`,
    });
    expect(status).toBe(202);
    goals.push({ goalId: body.goalId, title, purpose });
  }
  // Stored exactly as sent: through the API and in the table itself.
  for (const g of goals) {
    expect((await engine.http('GET', `/v1/goals/${g.goalId}`)).body.title).toBe(g.title);
    expect(await engine.db.prisma.goal.count({ where: { title: g.title } })).toBe(1);
  }
  expect((await engine.http('GET', `/v1/memory/subjects/contact:${to}`)).body.memories[0].text).toBe(
    HOSTILE.join(' | '),
  );
  const waiting = await Promise.all(
    goals.map((g) => engine.waitForGoal(g.goalId, (x) => x.approvals.some((a: any) => a.status === 'pending'))),
  );

  await signIn();
  await page.goto(url('/inbox'));
  for (const [i, g] of goals.entries()) {
    const approval = waiting[i].approvals.find((a: any) => a.status === 'pending');
    const card = page.locator(`article[data-approval-id="${approval.approvalId}"]`);
    await card.waitFor();
    // The summary names the draft's subject, built from the purpose; the draft's fields hold it as typed.
    await expect(card.locator('h3').textContent()).resolves.toContain(g.purpose);
    await expect(card.getByLabel('Subject').inputValue()).resolves.toContain(g.purpose);
    await expect(card.getByLabel('Body').inputValue()).resolves.toContain(HOSTILE[i]);
    await card.getByText(/^Provenance/).click();
    await expect(card.textContent()).resolves.toContain(HOSTILE.join(' | '));
  }
  await page.screenshot({ path: path.join(tmpdir(), `keel-security-inbox-${uniq()}.png`) });
  for (const g of goals) {
    await page.goto(url(`/inbox/goals/${g.goalId}`));
    await expect(page.locator('main').textContent()).resolves.toContain(g.title);
  }
  // Nothing the text carried ran, was added to the page, or opened a dialog.
  expect(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned)).toBeUndefined();
  await page.goto(url('/inbox'));
  expect(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned)).toBeUndefined();
  await expect(
    page.locator('script:not([nonce]), img[src="x"], svg[onload], a[href^="javascript:"]').count(),
  ).resolves.toBe(0);
  expect(dialogs).toEqual([]);
  // And nothing the SQL-looking text said happened.
  expect(await engine.db.prisma.goal.count()).toBeGreaterThanOrEqual(goals.length);
  expect(await engine.db.prisma.approval.count()).toBeGreaterThanOrEqual(goals.length);
});

test('a page on another site that posts a decision to the inbox decides nothing', async () => {
  const to = `csrf-${uniq()}@example.com`;
  const { body } = await engine.http('POST', '/v1/goals', { title: `Email ${to} a hello` });
  const goal = await engine.waitForGoal(body.goalId, (g) => g.status === 'awaiting_approval');
  const approval = goal.approvals[0];
  await signIn();
  const target = url(`/inbox/approvals/${approval.approvalId}/decision`);
  // localhost and 127.0.0.1 are different sites to the browser.
  evil = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(`<!doctype html><title>win a prize</title>
      <form id="f" method="POST" action="${target}">
        <input name="action" value="approve"><input name="submission" value="evil-${uniq()}">
        <input name="shownHash" value="${approval.shownHash}"><input name="csrf" value="guessed">
      </form>
      <script>
        fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', credentials: 'include',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'action=approve&submission=evil-fetch-${uniq()}&shownHash=${approval.shownHash}' })
          .finally(() => document.getElementById('f').submit());
      </script>`);
  });
  await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
  const evilUrl = `http://localhost:${(evil.address() as AddressInfo).port}/`;
  const before = await snapshot(engine.db.prisma, engine.temporal.client);
  const answers: number[] = [];
  page.on('response', (r) => {
    if (r.url() === target) answers.push(r.status());
  });
  await page.goto(evilUrl);
  await page.waitForURL(target);
  await new Promise((r) => setTimeout(r, 1000));
  expect(answers.length).toBeGreaterThanOrEqual(1);
  for (const status of answers) expect([401, 403]).toContain(status);
  expect(await snapshot(engine.db.prisma, engine.temporal.client)).toEqual(before);
  expect(await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: approval.approvalId } })).toMatchObject({
    status: 'pending',
  });
});
