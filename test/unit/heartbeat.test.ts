/**
 * Every activity beats while it runs (workers/heartbeat.ts), so a dead
 * worker's activity is retried after its heartbeat timeout; a local activity
 * does not (it has no heartbeat: the SDK core only warns about it).
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { heartbeatWhileRunning } from '../../workers/heartbeat';

/** Runs an activity that takes `ms` in an environment with the interceptor: how many beats it sent. */
async function beatsWhile(ms: number, isLocal: boolean): Promise<number> {
  const env = new MockActivityEnvironment({ isLocal }, { interceptors: [heartbeatWhileRunning] });
  let beats = 0;
  env.on('heartbeat', () => beats++);
  const result = await env.run(async () => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return 'done';
  });
  expect(result).toBe('done');
  return beats;
}

test('an activity that runs past the beat interval heartbeats', async () => {
  expect(await beatsWhile(1_300, false)).toBeGreaterThanOrEqual(1);
});

test('a local activity never heartbeats', async () => {
  expect(await beatsWhile(1_300, true)).toBe(0);
});
