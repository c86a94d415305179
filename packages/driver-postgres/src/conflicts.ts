/**
 * Transient concurrency failures of the server — a deadlock victim (`40P01`) or a serialization
 * failure (`40001`) — and the bounded retry that keeps them inside the driver.
 *
 * The statements take their row locks in one documented order (README, "Lock order"), so a
 * deadlock needs a plan that breaks it or a statement outside the driver. Either way the server
 * rolled the victim's whole transaction back, so running it again is exactly a first run: the
 * caller never sees a failed attempt, an extra `attempts`, a retry in the metrics or an error log.
 */

/** SQLSTATEs after which the rolled-back transaction may simply run again. */
const RETRYABLE = new Set(['40P01', '40001']);

/** True for a deadlock victim or a serialization failure (the `pg` error, or a wrapped one). */
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
 * Runs `fn`, re-running it after a deadlock or serialization failure with a jittered exponential
 * backoff (the two victims of a cycle must not meet again at once). Any other error, or the last
 * conflict once the retries are spent, is thrown as it came.
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
