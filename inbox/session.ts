/**
 * The inbox's session: an HMAC-signed token in an HttpOnly, SameSite=Strict
 * cookie scoped to /inbox, and a per-session CSRF token derived from it.
 *
 * Signed rather than kept server-side: the API keeps no state of its own
 * (PostgreSQL and Temporal hold it all), so a token that carries its own
 * expiry and is checked with a key derived from the API key survives an API
 * restart, works behind several API processes, and rotating KEEL_API_KEY
 * ends every session at once. The price is that signing out only drops the
 * cookie; a copied token stays good until it expires (12 h by default).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'keel_inbox';
export const DEFAULT_SESSION_TTL_MS = 12 * 60 * 60 * 1000;

export interface Session {
  /** The session's random id: the CSRF token is bound to it. */
  id: string;
  expiresAt: number;
}

export interface SessionKeys {
  issue(now?: number): { token: string; session: Session };
  verify(token: string | undefined, now?: number): Session | undefined;
  /** The CSRF token of a session: the same for every form of the session, useless without it. */
  csrfOf(session: Session): string;
  checkCsrf(session: Session, given: unknown): boolean;
}

const b64url = (b: Buffer) => b.toString('base64url');

/** Equal strings in constant time (different lengths are simply unequal). */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function sessionKeys(apiKey: string, ttlMs = DEFAULT_SESSION_TTL_MS): SessionKeys {
  // Separate keys for the two uses, both derived from the API key: a leaked CSRF token signs nothing.
  const derive = (use: string) => createHash('sha256').update(`keel-inbox:${use}\0${apiKey}`).digest();
  const sessionKey = derive('session');
  const csrfKey = derive('csrf');
  const sign = (payload: string) => b64url(createHmac('sha256', sessionKey).update(payload).digest());

  return {
    issue(now = Date.now()) {
      const session = { id: b64url(randomBytes(18)), expiresAt: now + ttlMs };
      const payload = `v1.${session.id}.${session.expiresAt}`;
      return { token: `${payload}.${sign(payload)}`, session };
    },
    verify(token, now = Date.now()) {
      const m = token ? /^(v1\.([A-Za-z0-9_-]{24})\.(\d{1,15}))\.([A-Za-z0-9_-]{43})$/.exec(token) : null;
      if (!m || !sameSecret(sign(m[1]), m[4])) return undefined;
      const expiresAt = Number(m[3]);
      return expiresAt > now ? { id: m[2], expiresAt } : undefined;
    },
    csrfOf(session) {
      return b64url(createHmac('sha256', csrfKey).update(session.id).digest());
    },
    checkCsrf(session, given) {
      return typeof given === 'string' && sameSecret(this.csrfOf(session), given);
    },
  };
}

/** The value of one cookie from a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Set-Cookie for the session: HttpOnly, SameSite=Strict, only under /inbox; Secure when served over HTTPS. */
export function sessionCookie(token: string, maxAgeMs: number, secure: boolean): string {
  return [
    `${SESSION_COOKIE}=${token}`,
    'Path=/inbox',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${Math.max(0, Math.floor(maxAgeMs / 1000))}`,
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}
