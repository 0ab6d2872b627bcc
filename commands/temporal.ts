/**
 * Every Temporal call a command makes goes through `callTemporal`: it runs
 * under a deadline, answers by that deadline even while the client's retry
 * interceptor is still backing off, and turns what went wrong into a typed
 * error that names the cause. `temporalConnection` builds the connection the
 * API uses in production: lazy (the API starts while Temporal is down),
 * quick to reconnect when Temporal returns, and remembering the last
 * transport failure so a timeout can say why.
 */
import {
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  defaultGrpcRetryOptions,
  isRetryableError,
  makeGrpcRetryInterceptor,
  type Client,
  type ConnectionOptions,
} from '@temporalio/client';
import { UnavailableError } from './errors';

/** gRPC status codes by number (the standard 17), so messages can name them without importing @grpc/grpc-js. */
const GRPC_CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;
const PERMISSION_DENIED = 7;
const UNAUTHENTICATED = 16;
const DEADLINE_EXCEEDED = 4;
const UNAVAILABLE = 14;
/**
 * Codes that say the server cannot serve now (or will not serve us), as opposed to an answer about the workflow.
 * FAILED_PRECONDITION (9) is, for an update, a workflow whose task is failing ("Workflow Task in failed
 * state": it takes no update until a worker completes its task again; the fault suite met it as a 500).
 * CANCELLED (1) is a server going down under the call (the fault suite met it when the dev server stopped during
 * a goal's start): our own cancellation never reaches here, the deadline race answers first.
 */
const UNAVAILABLE_CODES = new Set([1, 2, PERMISSION_DENIED, 8, 9, 10, 13, 15, UNAUTHENTICATED]);

/** The last time a connection's call failed for a reason of the transport or the server, and how. */
interface TransportFailure {
  at: number;
  text: string;
}
const transportFailures = new WeakMap<object, { last?: TransportFailure }>();

const describeStatus = (s: { code: number; details?: string }) =>
  `${s.code} ${GRPC_CODES[s.code] ?? 'UNKNOWN'}: ${s.details ?? ''}`.trim();

/**
 * A lazily connected Temporal connection for the API. Three choices, each for D6:
 * - lazy: the API starts and answers (503 naming Temporal) while Temporal is down;
 * - reconnect backoff capped at one second (gRPC's default grows by 1.6x up to two minutes
 *   while calls keep failing: after a 20 s outage with traffic the first call succeeded 4.6 s
 *   after Temporal's return, with the cap 0.5 to 1.4 s; test/integration/temporal-down.test.ts);
 * - the SDK's own retry policy, kept within each call's deadline, noting each attempt's
 *   failure, because once the deadline passes the call only reports DEADLINE_EXCEEDED and
 *   the real cause (`14 UNAVAILABLE: ... ECONNREFUSED`) would be lost.
 */
export function temporalConnection(options: ConnectionOptions = {}): Connection {
  const log: { last?: TransportFailure } = {};
  const connection = Connection.lazy({
    ...options,
    channelArgs: {
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 1000,
      ...options.channelArgs,
    },
    interceptors: [retryWithinDeadline(log), ...(options.interceptors ?? [])],
  });
  transportFailures.set(connection, log);
  return connection;
}

type Interceptor = NonNullable<ConnectionOptions['interceptors']>[number];

/**
 * The SDK's retry interceptor with its default policy, except that it never
 * sleeps past the call's deadline: its backoff reaches 5 s, so a retry timer
 * would otherwise outlive the deadline and the answer, and could fire into a
 * connection closed meanwhile. Each attempt's failure is noted in `log`.
 */
function retryWithinDeadline(log: { last?: TransportFailure }): Interceptor {
  const defaults = defaultGrpcRetryOptions();
  return (callOptions, nextCall) => {
    const deadline = callOptions.deadline === undefined ? Infinity : Number(callOptions.deadline);
    return makeGrpcRetryInterceptor({
      delayFunction: (attempt, status) =>
        Math.max(0, Math.min(defaults.delayFunction(attempt, status), deadline - Date.now())),
      retryableDecider(attempt, status) {
        if (isRetryableError(status) || status.code === UNAUTHENTICATED || status.code === PERMISSION_DENIED) {
          log.last = { at: Date.now(), text: describeStatus(status) };
        }
        return Date.now() < deadline && defaults.retryableDecider(attempt, status);
      },
    })(callOptions, nextCall);
  };
}

/** A gRPC status error somewhere in an SDK error's cause chain. */
function grpcCause(err: unknown): { code: number; details?: string; message: string } | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as never, i++) {
    if (typeof e.code === 'number' && typeof (e as { message?: unknown }).message === 'string') {
      return e as { code: number; details?: string; message: string };
    }
  }
  return undefined;
}

const TIMED_OUT = Symbol('timed out');

/** Errors that are answers, not failures: the command that made the call decides what they mean. */
const isAnswer = (err: unknown) =>
  err instanceof WorkflowNotFoundError ||
  err instanceof WorkflowExecutionAlreadyStartedError ||
  err instanceof WorkflowUpdateFailedError;

/**
 * Runs `fn`'s Temporal calls under a deadline of `timeoutMs` and answers by
 * then. Errors that carry an answer (not found, already started, update
 * refused) are rethrown as they are; a timeout or a transport failure becomes
 * an `UnavailableError` such as `Temporal did not answer within 5000 ms
 * (14 UNAVAILABLE: No connection established ...)`; anything else is rethrown
 * as the bug it is.
 */
export async function callTemporal<T>(client: Client, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  // The gRPC deadline ends each attempt; the abort ends the one in flight when we stop waiting; the
  // timer answers on time even when the retry interceptor sleeps past the deadline before its next attempt.
  const work = client.withDeadline(started + timeoutMs, () => client.withAbortSignal(abort.signal, fn));
  work.catch(() => undefined); // it may lose the race below; its rejection is handled there or not at all
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(TIMED_OUT), timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } catch (err) {
    if (isAnswer(err)) throw err;
    const status = grpcCause(err);
    const last = transportFailures.get(client.connection)?.last;
    const recent = last && last.at >= started ? last.text : undefined;
    // UNAVAILABLE is Temporal not answering too: the retries ran out at (or before) the deadline.
    if (
      err === TIMED_OUT ||
      err instanceof WorkflowUpdateRPCTimeoutOrCancelledError ||
      status?.code === DEADLINE_EXCEEDED ||
      status?.code === UNAVAILABLE
    ) {
      const cause =
        recent ??
        (status && status.code !== DEADLINE_EXCEEDED ? status.message : undefined) ??
        'no answer before the deadline: is the server overloaded, or is no worker running the workflow?';
      const unreachable = recent !== undefined || status?.code === UNAVAILABLE;
      throw new UnavailableError(`Temporal did not answer within ${timeoutMs} ms (${cause})`, undefined, unreachable);
    }
    if (status && UNAVAILABLE_CODES.has(status.code)) {
      throw new UnavailableError(`Temporal refused the call (${status.message})`, undefined, true);
    }
    throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}
