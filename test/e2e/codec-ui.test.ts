/**
 * The Temporal Web UI shows a goal encrypted with KEEL_CODEC_KEY in plaintext
 * once pointed at the API's codec endpoint, as the dev server's
 * `--ui-codec-endpoint` does: the dev server's own UI in Debian's chromium
 * (playwright-core) calls the endpoint cross-origin (its preflight and CORS
 * answered by api/codec.ts) and shows the goal's canary title. A second API
 * that allows another origin gets no answer through to the browser, and the
 * same page then shows no canary.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { launchBrowser, type TestBrowser } from '../helpers/browser';
import { createApp } from '../../api/app';
import { AesGcmPayloadCodec, codecUiToken, parseCodecKeys } from '../../codec';
import { startEngine, type TestEngine } from '../helpers/engine';

const SHOTS = path.resolve(__dirname, '..', '..', '.keel', 'test', 'screenshots');
const KEY = `k1:${randomBytes(32).toString('base64')}`;
const API_KEY = randomBytes(16).toString('hex');
const CANARY = `canary${randomBytes(12).toString('hex')}`;

let engine: TestEngine;
let page: Page;
let browser: TestBrowser | undefined;
let uiUrl: string;
const servers: Server[] = [];

jest.setTimeout(180_000);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** An API on a port chosen before the dev server starts, so the UI can be told where it is. */
async function listen(app: ReturnType<typeof createApp>, port: number): Promise<void> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(port, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
}

let codecPort: number;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const [uiPort, port] = [await freePort(), await freePort()];
  codecPort = port;
  uiUrl = `http://127.0.0.1:${uiPort}`;
  engine = await startEngine({
    apiKey: API_KEY,
    codecKey: KEY,
    codecUiOrigins: [uiUrl],
    temporal: {
      uiPort,
      extraArgs: ['--ui-codec-endpoint', `http://127.0.0.1:${codecPort}/codec/ui/${codecUiToken(API_KEY)}`],
    },
  });
  await engine.startWorker();
  browser = await launchBrowser({ width: 1300, height: 1000 });
  ({ page } = browser);
});

afterAll(async () => {
  await browser?.close();
  await Promise.all(
    servers.map(
      (s) =>
        new Promise((resolve) => {
          s.close(resolve);
          s.closeAllConnections();
        }),
    ),
  );
  await engine?.close();
});

function codecApi(origins: string[]) {
  return createApp({
    client: engine.temporal.client,
    prisma: engine.db.prisma,
    memory: engine.memory,
    apiKey: API_KEY,
    taskQueue: engine.taskQueue,
    goalSettings: engine.settings,
    defaultBudgetUsd: 1,
    actor: 'operator:test',
    codec: { codec: new AesGcmPayloadCodec(parseCodecKeys(KEY)), uiOrigins: origins },
  });
}

test('the dev server’s Web UI, pointed at the codec endpoint, shows the encrypted goal in plaintext', async () => {
  const { body } = await engine.http('POST', '/v1/goals', {
    title: `Email grace@example.com a thank-you note for the referral (${CANARY})`,
  });
  await engine.waitForGoal(body.goalId, (g) => g.status === 'awaiting_approval');
  const workflowPage = `${uiUrl}/namespaces/default/workflows/${body.workflowId}`;

  // First with a codec endpoint that allows another origin only: the browser refuses its answers.
  await listen(codecApi(['http://localhost:1']), codecPort);
  const refused: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') refused.push(m.text());
  });
  await page.goto(workflowPage);
  await page.getByText(body.workflowId).first().waitFor({ timeout: 60_000 });
  await page.waitForTimeout(3000);
  await page.screenshot({ path: path.join(SHOTS, 'codec-ui-other-origin.png'), fullPage: true });
  expect(await page.content()).not.toContain(CANARY);
  expect(refused.join('\n')).toMatch(/CORS|Access-Control-Allow-Origin/);

  // Then the same endpoint allowing the UI's origin.
  const first = servers.pop()!;
  await new Promise((resolve) => {
    first.close(resolve);
    first.closeAllConnections();
  });
  await listen(codecApi([uiUrl]), codecPort);
  await page.goto(workflowPage);
  await page.getByText(CANARY).first().waitFor({ timeout: 60_000 });
  await page.screenshot({ path: path.join(SHOTS, 'codec-ui.png'), fullPage: true });
});
