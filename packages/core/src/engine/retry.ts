import type { RetryPolicy } from '../define.js';

export type ResolvedRetryPolicy = Required<RetryPolicy>;

/** `base` overlaid with each policy's defined fields, later ones winning (a task's own last). */
export function resolveRetry(
  base: ResolvedRetryPolicy,
  ...policies: (RetryPolicy | undefined)[]
): ResolvedRetryPolicy {
  const merged = { ...base };
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
