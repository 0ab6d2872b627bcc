/**
 * Runs once before the suite: finds the Temporal CLI and bundles the workflows
 * once, so each test file starts its dev server and workers without rebundling;
 * with KEEL_TEST_DATABASE=embedded, makes the PGlite templates (test/pglite.ts).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleKeelWorkflows } from '../workers/bundle';
import { pgliteTemplates } from './pglite';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { resolveTemporalCli } = require('../scripts/temporal-cli.js') as {
  resolveTemporalCli(opts: { install: boolean }): Promise<{ path: string | null; source: string }>;
};

export default async function globalSetup(): Promise<void> {
  const root = path.resolve(__dirname, '..');
  if (!process.env.KEEL_TEST_TEMPORAL_CLI) {
    const cli = await resolveTemporalCli({ install: true });
    if (!cli.path) throw new Error('The Temporal CLI is needed for the tests; run `node scripts/setup.js --for test`.');
    process.env.KEEL_TEST_TEMPORAL_CLI = cli.path;
  }
  const outDir = path.join(root, '.keel', 'test');
  await mkdir(outDir, { recursive: true });
  const { code } = await bundleKeelWorkflows({ logger: quietLogger });
  const bundlePath = path.join(outDir, 'workflow-bundle.js');
  await writeFile(bundlePath, code);
  process.env.KEEL_TEST_WORKFLOW_BUNDLE = bundlePath;
  if (process.env.KEEL_TEST_DATABASE === 'embedded') {
    process.env.KEEL_TEST_PGLITE_TEMPLATES = await pgliteTemplates(outDir);
  }
}

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };
