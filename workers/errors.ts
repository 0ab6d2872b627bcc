/**
 * What an activity's unexpected error says to people. An error that is not a
 * Temporal failure (a Prisma or pg error, a TypeError) becomes the goal's
 * `error` and its steps' errors as is: the database's raw message, with the
 * query and a server file path. This interceptor replaces it with a plain
 * reason and an error type, and writes the full detail to the worker log.
 */
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure, TemporalFailure } from '@temporalio/common';
import type { ActivityInboundCallsInterceptor, ActivityInterceptorsFactory } from '@temporalio/worker';

/** The failure type of an error the canonical store returned. */
export const DATABASE_ERROR = 'DatabaseError';
/** The failure type of any other error an activity did not expect. */
export const UNEXPECTED_ERROR = 'UnexpectedError';

/**
 * Prisma error codes that say the input itself is wrong, so a retry would
 * fail the same way: value too long (P2000), invalid value or data
 * (P2005–P2007), input error (P2019), out of range (P2020, P2033),
 * inconsistent column data (P2023).
 */
const PERMANENT_PRISMA_CODES = new Set(['P2000', 'P2005', 'P2006', 'P2007', 'P2019', 'P2020', 'P2023', 'P2033']);
/** Prisma codes for a database that cannot be reached right now (or a full pool): these pass. */
const UNREACHABLE_PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);

interface ErrorFields {
  name?: unknown;
  code?: unknown;
  meta?: { driverAdapterError?: { cause?: { originalCode?: unknown; kind?: unknown } } };
}

/** How a plain reason describes an unexpected error. */
export interface Classified {
  message: string;
  type: string;
  nonRetryable: boolean;
}

/**
 * Classifies an error by its name and codes only (never its message): Prisma
 * errors by name and `P` code, and PostgreSQL's SQLSTATE wherever the driver
 * puts it. Class 22 ("data exception": invalid text for json, a character
 * the encoding cannot hold, a string too long) is the input's fault and
 * permanent; everything else keeps Temporal's retries, as it had before.
 */
export function classifyError(err: unknown, activityType: string): Classified {
  const fields = (typeof err === 'object' && err !== null ? err : {}) as ErrorFields;
  const name = typeof fields.name === 'string' && fields.name ? fields.name : typeof err;
  const code = typeof fields.code === 'string' ? fields.code : undefined;
  const cause = fields.meta?.driverAdapterError?.cause;
  const sqlState =
    typeof cause?.originalCode === 'string'
      ? cause.originalCode
      : code && /^[0-9A-Z]{5}$/.test(code)
        ? code
        : undefined;
  const isPrisma = name.startsWith('PrismaClient');
  if (!isPrisma && !sqlState) {
    return {
      message: `${activityType} failed unexpectedly (${name}); details are in the worker log`,
      type: UNEXPECTED_ERROR,
      nonRetryable: false,
    };
  }
  const label = [name, code, sqlState && sqlState !== code ? `SQLSTATE ${sqlState}` : undefined]
    .filter(Boolean)
    .join(' ');
  const unreachable =
    name === 'PrismaClientInitializationError' ||
    (code !== undefined && UNREACHABLE_PRISMA_CODES.has(code)) ||
    cause?.kind === 'DatabaseNotReachable' ||
    sqlState?.startsWith('08') === true;
  if (unreachable) {
    return {
      message: `the canonical store could not be reached (${label}); details are in the worker log`,
      type: DATABASE_ERROR,
      nonRetryable: false,
    };
  }
  const permanent =
    name === 'PrismaClientValidationError' ||
    (code !== undefined && PERMANENT_PRISMA_CODES.has(code)) ||
    sqlState?.startsWith('22') === true;
  return {
    message: `the canonical store refused the operation (${label}); details are in the worker log`,
    type: DATABASE_ERROR,
    nonRetryable: permanent,
  };
}

class PlainErrors implements ActivityInboundCallsInterceptor {
  constructor(private readonly ctx: Context) {}

  async execute(
    input: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[0],
    next: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[1],
  ): Promise<unknown> {
    try {
      return await next(input);
    } catch (err) {
      // Temporal failures already say what they mean (ApplicationFailure with
      // a type, CancelledFailure); an error thrown because the activity was
      // cancelled (an aborted fetch) must stay as is to count as cancellation.
      if (err instanceof TemporalFailure || this.ctx.cancellationSignal.aborted) throw err;
      const { activityType, attempt } = this.ctx.info;
      const plain = classifyError(err, activityType);
      const e = (err ?? {}) as { message?: unknown; stack?: unknown; code?: unknown; meta?: unknown };
      log.error('Activity failed with an unexpected error; reported as a plain reason', {
        reason: plain.message,
        nonRetryable: plain.nonRetryable,
        attempt,
        errorName: err instanceof Error ? err.name : typeof err,
        errorMessage: err instanceof Error ? err.message : String(err),
        errorCode: e.code,
        errorMeta: e.meta,
        stack: e.stack,
      });
      throw ApplicationFailure.create({ message: plain.message, type: plain.type, nonRetryable: plain.nonRetryable });
    }
  }
}

/** Register with `interceptors: { activity: [plainActivityErrors] }`. */
export const plainActivityErrors: ActivityInterceptorsFactory = (ctx) => ({ inbound: new PlainErrors(ctx) });
