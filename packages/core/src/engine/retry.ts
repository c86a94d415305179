import type { RetryPolicy } from '../define.js';

export type ResolvedRetryPolicy = Required<RetryPolicy>;

export const DEFAULT_RETRY: ResolvedRetryPolicy = {
  maxAttempts: 3,
  initialDelayMs: 1000,
  factor: 2,
  maxDelayMs: 60_000,
  jitter: 0.5,
};

export function resolveRetry(...policies: (RetryPolicy | undefined)[]): ResolvedRetryPolicy {
  const merged = { ...DEFAULT_RETRY };
  for (const p of policies)
    if (p)
      Object.assign(
        merged,
        Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)),
      );
  return merged;
}

/** Delay before retrying after `attempt` failed attempts: exponential, capped, with jitter. */
export function backoffDelay(
  policy: ResolvedRetryPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const base = Math.min(
    policy.maxDelayMs,
    policy.initialDelayMs * policy.factor ** Math.max(0, attempt - 1),
  );
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  return Math.round(base * (1 - jitter) + base * jitter * random());
}
