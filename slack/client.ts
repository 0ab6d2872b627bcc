/** The Slack Web API client the approval messages use, and how its errors read. */
import { ErrorCode, LogLevel, WebClient } from '@slack/web-api';

export interface SlackClientOptions {
  /** SLACK_BOT_TOKEN. */
  token: string;
  /** SLACK_API_URL: Slack's own, or a local stand-in in tests. */
  apiUrl: string;
  /** SLACK_TIMEOUT_MS, the deadline of each request. */
  timeoutMs: number;
}

/**
 * The real WebClient. Its own retries are off and rate limits are reported
 * rather than slept through: the notifier tries again on its next pass, and
 * a click's answers must not wait.
 */
export function createSlackWebClient(opts: SlackClientOptions): WebClient {
  return new WebClient(opts.token, {
    slackApiUrl: opts.apiUrl,
    timeout: opts.timeoutMs,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    logLevel: LogLevel.ERROR,
  });
}

/** Slack's own error code (`channel_not_found`), when Slack answered `ok: false`. */
export function platformError(err: unknown): string | undefined {
  const e = err as { code?: string; data?: { error?: unknown } } | undefined;
  return e?.code === ErrorCode.PlatformError && typeof e.data?.error === 'string' ? e.data.error : undefined;
}

/**
 * Whether Slack certainly did not act on the request: it answered with an
 * error, a rate limit or an HTTP error status. A request that timed out or
 * lost its connection may have been acted on.
 */
export function certainlyRefused(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === ErrorCode.PlatformError || code === ErrorCode.RateLimitedError || code === ErrorCode.HTTPError;
}

/** A short description of a WebClient error for logs and answers. */
export function describeSlackError(err: unknown): string {
  const platform = platformError(err);
  if (platform) return platform;
  const e = err as { message?: string; original?: { message?: string } } | undefined;
  return e?.original?.message ?? e?.message ?? String(err);
}
