/**
 * Debian's chromium, headless, through playwright-core, for the tests of pages: the one place the
 * executable, its flags and the fresh profile are chosen.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.KEEL_CHROMIUM ?? '/usr/bin/chromium';
// The flags that work on these machines: no sandbox as root, and no background calls to a closed network.
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface TestBrowser {
  context: BrowserContext;
  /** The context's first page. */
  page: Page;
  /** Closes the browser and deletes its profile. */
  close(): Promise<void>;
}

/** A browser on a fresh profile (launchPersistentContext is how Playwright takes --user-data-dir). */
export async function launchBrowser(viewport: { width: number; height: number }): Promise<TestBrowser> {
  const profile = mkdtempSync(path.join(tmpdir(), 'keel-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
