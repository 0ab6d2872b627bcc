/** callTemporal's reading of gRPC failures: what is Temporal being unavailable (503) and what is a bug. */
import type { Client } from '@temporalio/client';
import { callTemporal } from '../../commands/temporal';
import { UnavailableError } from '../../commands/errors';

/** A client whose every call fails with `err`, through the same deadline/abort wrappers the real one has. */
function failingClient(): Client {
  const connection = {};
  return {
    connection,
    withDeadline: (_d: number, fn: () => Promise<unknown>) => fn(),
    withAbortSignal: (_s: AbortSignal, fn: () => Promise<unknown>) => fn(),
  } as unknown as Client;
}

const serviceError = (code: number, details: string) =>
  Object.assign(new Error('Failed to start Workflow'), {
    cause: Object.assign(new Error(`${code} ${details}`), { code, details }),
  });

test('a call the server cancelled while going down is unavailable (503, retry), naming the status', async () => {
  const err = await callTemporal(failingClient(), 1000, async () => {
    throw serviceError(1, 'Call cancelled');
  }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(UnavailableError);
  expect((err as Error).message).toBe('Temporal refused the call (1 Call cancelled)');
});

test('an update refused because the workflow task is failing is unavailable, not a 500', async () => {
  const err = await callTemporal(failingClient(), 1000, async () => {
    throw serviceError(9, 'Unable to perform workflow execution update due to Workflow Task in failed state.');
  }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(UnavailableError);
  expect((err as Error).message).toContain('Workflow Task in failed state');
});

test('an error that is not a gRPC status is rethrown as it is', async () => {
  const bug = new TypeError('x is not a function');
  await expect(
    callTemporal(failingClient(), 1000, async () => {
      throw bug;
    }),
  ).rejects.toBe(bug);
});
