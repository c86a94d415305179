import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * How the HTTP API authenticates callers. There is no default: pick one explicitly.
 *
 * - `{ bearerTokens }` — `Authorization: Bearer <token>`, any of the listed tokens.
 * - `{ hmacKey }` — every request signed (see {@link signRequest}): headers
 *   `X-Switchyard-Timestamp: <unix epoch milliseconds>` and
 *   `X-Switchyard-Signature: v1=<hex HMAC-SHA256(key, timestamp + "\n" + METHOD + "\n" + path?query + "\n" + body)>`;
 *   the timestamp must be within `maxSkewMs` of the server clock.
 * - `{ none: true }` — no check here, because something in front already authenticates
 *   (Azure Functions' function key with `authLevel: 'function'`, a gateway, mTLS).
 */
export type HttpAuth =
  | { bearerTokens: readonly string[] }
  | { hmacKey: string /** @defaultValue 300000 (5 min) */; maxSkewMs?: number }
  | { none: true };

/** Header carrying the HMAC request timestamp (unix epoch milliseconds). */
export const HMAC_TIMESTAMP_HEADER = 'x-switchyard-timestamp';
/** Header carrying the HMAC signature, `v1=<hex>`. */
export const HMAC_SIGNATURE_HEADER = 'x-switchyard-signature';

/** The string an HMAC signature covers. */
function canonicalRequest(timestamp: string, method: string, pathAndQuery: string, body: string) {
  return `${timestamp}\n${method.toUpperCase()}\n${pathAndQuery}\n${body}`;
}

/**
 * Signs a request for an API configured with `auth: { hmacKey }`; returns the two headers to send.
 *
 * @example
 * ```ts
 * const body = JSON.stringify({ n: 10 });
 * const headers = signRequest({ key, method: 'POST', path: '/api/jobs/submit/hello_world', body });
 * await fetch(url, { method: 'POST', body, headers: { ...headers, 'content-type': 'application/json' } });
 * ```
 */
export function signRequest(request: {
  key: string;
  method: string;
  /** Path and query string exactly as sent, e.g. `/api/jobs/x/tasks?limit=10`. */
  path: string;
  body?: string;
  /** @defaultValue `Date.now()` */
  timestamp?: number;
}): Record<string, string> {
  const timestamp = String(request.timestamp ?? Date.now());
  const mac = hmacHex(request.key, timestamp, request.method, request.path, request.body ?? '');
  return { [HMAC_TIMESTAMP_HEADER]: timestamp, [HMAC_SIGNATURE_HEADER]: `v1=${mac}` };
}

function hmacHex(key: string, timestamp: string, method: string, path: string, body: string) {
  return createHmac('sha256', key)
    .update(canonicalRequest(timestamp, method, path, body))
    .digest('hex');
}

/** Constant-time string equality: both sides are hashed first so lengths never leak either. */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** Checks a bearer token against every configured token (no early exit). */
export function checkBearer(header: string | null, tokens: readonly string[]): boolean {
  const match = header ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
  const given = match?.[1] ?? '';
  let ok = false;
  for (const token of tokens) {
    // Empty configured tokens never match (a misconfiguration must not open the API).
    if (safeEqual(given, token) && token.length > 0 && given.length > 0) ok = true;
  }
  return ok;
}

/** Verifies an HMAC-signed request; returns the reason it is rejected, or undefined when valid. */
export function checkHmac(
  headers: Headers,
  method: string,
  pathAndQuery: string,
  body: string,
  key: string,
  maxSkewMs: number,
  now = Date.now(),
): string | undefined {
  const unsigned = checkHmacHeaders(headers, maxSkewMs, now);
  if (unsigned) return unsigned;
  const timestamp = headers.get(HMAC_TIMESTAMP_HEADER)!;
  const signature = headers.get(HMAC_SIGNATURE_HEADER)!;
  // Sign the timestamp string as received, so "0012" and "12" are different messages.
  const expected = `v1=${hmacHex(key, timestamp, method, pathAndQuery, body)}`;
  return safeEqual(signature.trim(), expected) ? undefined : 'bad signature';
}

/**
 * What {@link checkHmac} can tell without the body: whether the request carries both headers and a
 * timestamp within the window. A request refused here is refused before its body is read, so an
 * anonymous caller's body is never read, however large or malformed.
 * @returns the reason the request is rejected, or undefined when only the signature is left to check
 */
export function checkHmacHeaders(
  headers: Headers,
  maxSkewMs: number,
  now = Date.now(),
): string | undefined {
  const timestamp = headers.get(HMAC_TIMESTAMP_HEADER);
  const signature = headers.get(HMAC_SIGNATURE_HEADER);
  if (!timestamp || !signature) return 'missing signature headers';
  if (!/^\d{1,16}$/.test(timestamp)) return 'malformed timestamp';
  if (Math.abs(now - Number(timestamp)) > maxSkewMs) return 'timestamp outside the allowed window';
  return undefined;
}
