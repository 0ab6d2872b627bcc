/** A real Temporal dev server per test file, from the CLI binary the global setup found. */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { KeelPendingApprovals, KeelStatus } from '../../workflows/messages';

export function workflowBundlePath(): string {
  const p = process.env.KEEL_TEST_WORKFLOW_BUNDLE;
  if (!p) throw new Error('KEEL_TEST_WORKFLOW_BUNDLE is not set: run the tests through jest (test/global-setup.ts)');
  return p;
}

export async function startTemporal(): Promise<TestWorkflowEnvironment> {
  const cli = process.env.KEEL_TEST_TEMPORAL_CLI;
  if (!cli) throw new Error('KEEL_TEST_TEMPORAL_CLI is not set: run the tests through jest (test/global-setup.ts)');
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: cli },
      ip: '127.0.0.1',
      searchAttributes: [KeelStatus, KeelPendingApprovals],
      log: { format: 'pretty', level: 'warn' },
    },
  });
}
