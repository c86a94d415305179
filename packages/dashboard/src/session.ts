import { createHmac, randomBytes } from 'node:crypto';
import { safeEqual } from '@switchyard/core/http';

/**
 * Browser sessions: a signed, stateless cookie `<sessionId>.<expiresAtMs>.<mac>` and a CSRF token
 * derived from the session id. Nothing is stored server-side, so every instance that shares the
 * secret accepts the session; a session ends when it expires or the browser drops the cookie.
 */
export interface SessionKeys {
  /** A new session: the cookie value and its CSRF token. */
  issue(now?: number): { cookie: string; csrf: string; sessionId: string };
  /** The session id of a valid, unexpired cookie value; undefined otherwise. */
  verify(cookie: string | undefined, now?: number): string | undefined;
  /** The CSRF token that belongs to a session. */
  csrfFor(sessionId: string): string;
  /** True when `token` is the CSRF token of `sessionId` (constant time). */
  checkCsrf(sessionId: string, token: string | null | undefined): boolean;
}

export function sessionKeys(options: { secret: string; ttlMs: number }): SessionKeys {
  const mac = (text: string) =>
    createHmac('sha256', options.secret).update(text).digest('base64url');
  const csrfFor = (sessionId: string) => mac(`csrf:${sessionId}`);
  return {
    issue(now = Date.now()) {
      const sessionId = randomBytes(18).toString('base64url');
      const body = `${sessionId}.${now + options.ttlMs}`;
      return { cookie: `${body}.${mac(`session:${body}`)}`, csrf: csrfFor(sessionId), sessionId };
    },
    verify(cookie, now = Date.now()) {
      if (!cookie || cookie.length > 200) return undefined;
      const parts = cookie.split('.');
      if (parts.length !== 3) return undefined;
      const [sessionId, expires, given] = parts as [string, string, string];
      if (!/^\d{1,16}$/.test(expires)) return undefined;
      if (!safeEqual(given, mac(`session:${sessionId}.${expires}`))) return undefined;
      return Number(expires) > now ? sessionId : undefined;
    },
    csrfFor,
    checkCsrf(sessionId, token) {
      return typeof token === 'string' && token.length > 0 && safeEqual(token, csrfFor(sessionId));
    },
  };
}
