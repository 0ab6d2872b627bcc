/**
 * Whether an error means "PostgreSQL cannot be reached right now" (refused,
 * dropped, shutting down, starting up, recovering), as opposed to a query
 * that is wrong. The API answers the first with 503 naming the reason, so a
 * client knows to retry; workers let Temporal retry the activity.
 */

/** SQLSTATE codes of a server that is going away or not ready, and of lost connections. */
const UNAVAILABLE_SQLSTATES = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, in recovery)
  '08000', // connection_exception
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08003', // connection_does_not_exist
  '08004', // sqlserver_rejected_establishment_of_sqlconnection
  '08006', // connection_failure
  '53300', // too_many_connections
]);

/** Socket-level errors of node-postgres. */
const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND']);

/** Prisma's codes for an unreachable server (P1001), a timeout (P1002, P2024) and a closed connection (P1017). */
const UNAVAILABLE_PRISMA = new Set(['P1001', 'P1002', 'P1017', 'P2024']);

/** driverAdapterError kinds that mean the server is unreachable. */
const UNAVAILABLE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);

/** Messages node-postgres uses when a connection is lost without a code. */
const UNAVAILABLE_MESSAGES = [
  /connection terminated/i,
  /terminating connection due to administrator command/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
  /timeout exceeded when trying to connect/i,
  /can't reach database server/i,
  /server closed the connection unexpectedly/i,
];

interface ErrorLike {
  code?: unknown;
  errno?: unknown;
  message?: unknown;
  cause?: unknown;
  meta?: { driverAdapterError?: { cause?: { kind?: unknown; originalCode?: unknown } } };
}

/** Why PostgreSQL is unavailable, read from `err` (and its causes), or undefined when `err` is something else. */
export function databaseUnavailable(err: unknown): string | undefined {
  const seen = new Set<unknown>();
  for (let e = err as ErrorLike | undefined; e && typeof e === 'object' && !seen.has(e); e = e.cause as ErrorLike) {
    seen.add(e);
    const code = typeof e.code === 'string' ? e.code : undefined;
    const kind = e.meta?.driverAdapterError?.cause?.kind;
    const original = e.meta?.driverAdapterError?.cause?.originalCode;
    const message = typeof e.message === 'string' ? e.message.trim().split('\n')[0] : '';
    if (typeof kind === 'string' && UNAVAILABLE_KINDS.has(kind)) return kind;
    if (typeof original === 'string' && UNAVAILABLE_SQLSTATES.has(original)) return `SQLSTATE ${original}`;
    if (code && UNAVAILABLE_PRISMA.has(code)) return `${code} ${message || 'database not reachable'}`.trim();
    if (code && (UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_ERRNOS.has(code)))
      return message ? `${code} ${message}` : code;
    if (UNAVAILABLE_MESSAGES.some((re) => re.test(message))) return message;
  }
  return undefined;
}
