/** Which errors mean "PostgreSQL is not there right now" (503, retry) and which are real query errors (500). */
import { databaseUnavailable } from '../../db/unavailable';

test('lost connections, shutdowns, start-up and Prisma reachability errors are recognised, through causes too', () => {
  expect(databaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(
    'Connection terminated unexpectedly',
  );
  expect(
    databaseUnavailable(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5'), { code: 'ECONNREFUSED' })),
  ).toBe('ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5');
  expect(
    databaseUnavailable(Object.assign(new Error('the database system is starting up'), { code: '57P03' })),
  ).toContain('57P03');
  expect(
    databaseUnavailable({
      code: 'P1001',
      message: '',
      meta: { driverAdapterError: { cause: { kind: 'DatabaseNotReachable' } } },
    }),
  ).toBe('DatabaseNotReachable');
  const wrapped = new Error('activity failed', {
    cause: Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
  });
  expect(databaseUnavailable(wrapped)).toContain('57P01');
});

test('query errors, constraint violations and unrelated errors are not', () => {
  expect(databaseUnavailable(Object.assign(new Error('duplicate key value'), { code: '23505' }))).toBeUndefined();
  expect(databaseUnavailable(Object.assign(new Error('Unique constraint failed'), { code: 'P2002' }))).toBeUndefined();
  expect(databaseUnavailable(new Error('syntax error at or near "SELEC"'))).toBeUndefined();
  expect(databaseUnavailable(undefined)).toBeUndefined();
  const loop: { message: string; cause?: unknown } = { message: 'a cycle' };
  loop.cause = loop;
  expect(databaseUnavailable(loop)).toBeUndefined();
});
