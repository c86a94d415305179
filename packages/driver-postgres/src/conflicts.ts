/**
 * Transient failures after which a statement may simply run again, and the bounded retry that keeps
 * them inside the driver: a deadlock victim (`40P01`) or a serialization failure (`40001`) — the
 * server rolled the victim's whole transaction back — and a session the server refused
 * (`53300` too many connections, `57P03` cannot connect now) — nothing was sent.
 *
 * The statements take their row locks in one documented order (README, "Lock order"), so a
 * deadlock needs a plan that breaks it or a statement outside the driver. Either way running the
 * statement again is exactly a first run: the caller never sees a failed attempt, an extra
 * `attempts`, a retry in the metrics or an error log.
 */

/** SQLSTATEs after which the statement (or transaction) may simply run again. */
const RETRYABLE = new Set(['40P01', '40001', '53300', '57P03']);

/** True for a deadlock victim, a serialization failure or a refused session (the `pg` error, or a wrapped one). */
export function isConflict(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && RETRYABLE.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export interface ConflictRetry {
  /** Runs after the first. @defaultValue 8 */
  retries?: number;
  /** Delay before the first re-run, doubled each time, ms. @defaultValue 5 */
  initialDelayMs?: number;
  /** Longest delay, ms. @defaultValue 200 */
  maxDelayMs?: number;
  /** Called before each re-run (tests count them). */
  onRetry?: (err: unknown, retry: number) => void;
}

const DEFAULTS = { retries: 8, initialDelayMs: 5, maxDelayMs: 200 } as const;

/**
 * Runs `fn`, re-running it after a deadlock, a serialization failure or a refused session with a
 * jittered exponential backoff (two victims of a cycle must not meet again at once). Any other
 * error, or the last one once the retries are spent, is thrown as it came.
 */
export async function retryConflicts<T>(
  fn: () => Promise<T>,
  options: ConflictRetry = {},
): Promise<T> {
  const retries = options.retries ?? DEFAULTS.retries;
  const initial = options.initialDelayMs ?? DEFAULTS.initialDelayMs;
  const max = options.maxDelayMs ?? DEFAULTS.maxDelayMs;
  for (let retry = 0; ; retry++) {
    try {
      return await fn();
    } catch (err) {
      if (retry >= retries || !isConflict(err)) throw err;
      options.onRetry?.(err, retry + 1);
      const ceiling = Math.min(max, initial * 2 ** retry);
      await new Promise((r) => setTimeout(r, ceiling / 2 + Math.random() * (ceiling / 2)));
    }
  }
}
