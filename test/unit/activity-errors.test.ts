/**
 * D4: an activity's raw error (a database message with a server path) is
 * reported as a plain reason, with the detail in the worker log. Real Prisma
 * errors from a scratch database, run through Temporal's
 * MockActivityEnvironment with the interceptor the worker registers.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import { createPrisma } from '../../db/prisma';
import { DATABASE_ERROR, plainActivityErrors, UNEXPECTED_ERROR } from '../../workers/errors';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
});
afterAll(async () => {
  await db?.drop();
});

function environment(activityType: string) {
  const logs: LogEntry[] = [];
  const env = new MockActivityEnvironment(
    { activityType },
    { interceptors: [plainActivityErrors], logger: new DefaultLogger('DEBUG', (entry) => logs.push(entry)) },
  );
  return { env, logs };
}

async function failureOf(run: () => Promise<unknown>): Promise<ApplicationFailure> {
  const err = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe('activity errors reach the goal as plain reasons', () => {
  it('turns a database refusal into a plain, non-retryable reason and logs the detail', async () => {
    const { env, logs } = environment('recordArtifact');
    // Half a surrogate pair in JSON: what a preview cut in UTF-16 units wrote.
    const write = () => db.prisma.$executeRawUnsafe('SELECT $1::jsonb', JSON.stringify({ preview: 'ok \ud83d' }));
    const failure = await failureOf(() => env.run(write));
    expect(failure.message).toBe(
      'the canonical store refused the operation (PrismaClientKnownRequestError P2010 SQLSTATE 22P02); details are in the worker log',
    );
    expect(failure.type).toBe(DATABASE_ERROR);
    expect(failure.nonRetryable).toBe(true);
    // Nothing of the raw message travels with the failure.
    expect(failure.cause).toBeUndefined();
    expect(JSON.stringify(failure.details ?? null)).not.toContain('json');

    const entry = logs.find((l) => l.level === 'ERROR');
    expect(entry?.meta).toMatchObject({
      errorName: 'PrismaClientKnownRequestError',
      errorCode: 'P2010',
      nonRetryable: true,
    });
    expect(String(entry?.meta?.errorMessage)).toContain('invalid input syntax for type json');
  });

  it('keeps a database that cannot be reached retryable', async () => {
    const { env } = environment('loadGoal');
    const unreachable = createPrisma('postgresql://postgres@127.0.0.1:1/nowhere', { max: 1 });
    try {
      const failure = await failureOf(() => env.run(() => unreachable.goal.count()));
      expect(failure.message).toMatch(
        /^the canonical store could not be reached \(PrismaClientKnownRequestError P1001/,
      );
      expect(failure.type).toBe(DATABASE_ERROR);
      expect(failure.nonRetryable).toBe(false);
    } finally {
      await unreachable.$disconnect();
    }
  });

  it('names the activity, not the message, for any other unexpected error', async () => {
    const { env } = environment('draftEmail');
    const failure = await failureOf(() =>
      env.run(async () => {
        throw new TypeError("Cannot read properties of undefined (reading 'body') at /srv/keel/tools/draft.ts:12");
      }),
    );
    expect(failure.message).toBe('draftEmail failed unexpectedly (TypeError); details are in the worker log');
    expect(failure.type).toBe(UNEXPECTED_ERROR);
    expect(failure.nonRetryable).toBe(false);
  });

  it('lets ApplicationFailures and cancellations through unchanged', async () => {
    const { env } = environment('sendEmail');
    const own = ApplicationFailure.nonRetryable('the recipient is not allowed', 'PolicyViolation');
    await expect(
      env.run(async () => {
        throw own;
      }),
    ).rejects.toBe(own);

    const cancelled = environment('sendEmail').env;
    const aborted = new Error('This operation was aborted');
    const run = cancelled.run(async () => {
      // As an HTTP client does when given the cancellation signal.
      await Context.current()
        .cancelled.catch(() => undefined)
        .then(() => {
          throw aborted;
        });
    });
    cancelled.cancel();
    await expect(run).rejects.toBe(aborted);

    const stillCancelled = cancelled.run(async () => {
      await Context.current().cancelled;
    });
    await expect(stillCancelled).rejects.toBeInstanceOf(CancelledFailure);
  });
});
