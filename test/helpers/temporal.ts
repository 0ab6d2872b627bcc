/** A real Temporal dev server per test file, from the CLI binary the global setup found. */
import type { DataConverter } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { KeelPendingApprovals, KeelStatus } from '../../workflows/messages';

export function workflowBundlePath(): string {
  const p = process.env.KEEL_TEST_WORKFLOW_BUNDLE;
  if (!p) throw new Error('KEEL_TEST_WORKFLOW_BUNDLE is not set: run the tests through jest (test/global-setup.ts)');
  return p;
}

/**
 * Keeps the SDK's logging to what matters in test output: warnings from the
 * TypeScript side, errors from the Rust core (the replay test's negative
 * control makes the core warn about nondeterminism on purpose). Installed
 * only by files that use Temporal: an installed runtime that nothing uses
 * keeps the Jest worker process alive.
 */
export function quietTemporalRuntime(): void {
  if (Runtime._instance) return;
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'ERROR', other: 'ERROR' }), forward: {} },
    },
  });
}

/** Options of {@link startTemporal}. */
export interface StartTemporalOptions {
  /**
   * The Temporal CLI binary; default KEEL_TEST_TEMPORAL_CLI (set by the global
   * setup). `null`: let the SDK download one (what scripts/temporal-cli.js
   * answers when it found none).
   */
  cliPath?: string | null;
  /** The dev server's own log level (default `warn`). */
  logLevel?: 'warn' | 'error';
  /** The SQLite file the dev server keeps its data in (default: in memory). */
  dbFilename?: string;
  /** The data converter of the environment's client (the payload codec's, say). */
  dataConverter?: DataConverter;
  /** Serve the Web UI on this port (default: no UI). */
  uiPort?: number;
  /** More `temporal server start-dev` flags (e.g. `--ui-codec-endpoint <url>`). */
  extraArgs?: string[];
}

/** A local Temporal dev server with Keel's search attributes. */
export async function startTemporal(opts: StartTemporalOptions = {}): Promise<TestWorkflowEnvironment> {
  quietTemporalRuntime();
  const cli = opts.cliPath === undefined ? process.env.KEEL_TEST_TEMPORAL_CLI : opts.cliPath;
  if (cli === undefined || cli === '')
    throw new Error('KEEL_TEST_TEMPORAL_CLI is not set: run the tests through jest (test/global-setup.ts)');
  return TestWorkflowEnvironment.createLocal({
    server: {
      ...(cli ? { executable: { type: 'existing-path' as const, path: cli } } : {}),
      ip: '127.0.0.1',
      searchAttributes: [KeelStatus, KeelPendingApprovals],
      log: { format: 'pretty', level: opts.logLevel ?? 'warn' },
      ...(opts.dbFilename ? { dbFilename: opts.dbFilename } : {}),
      ...(opts.uiPort ? { ui: true, uiPort: opts.uiPort } : {}),
      ...(opts.extraArgs ? { extraArgs: opts.extraArgs } : {}),
    },
    ...(opts.dataConverter ? { client: { dataConverter: opts.dataConverter } } : {}),
  });
}
