/**
 * What the transport does by default on each Service Bus tier, so a user gets the tier's
 * throughput by naming it. The figures follow from the tier's limits (see the emulator's
 * `tiers.ts` for their sources) and `npm run bench -- azure-limits` (bench/RESULTS.md):
 *
 * - `standard`: 1,000 credits/s per namespace, one per message sent, received or settled. The
 *   transport paces itself at 850 credits/s with bursts of 100, so that no one-second window
 *   spends more than 950 plus the few messages its receivers prefetch (8 per queue); tasks go 100
 *   to a message (`packTasks`), so a task costs about 3/100 of a credit and the namespace carries
 *   some 25,000 tasks/s instead of ~330.
 * - `premium`: no credit throttling (messaging units bound the throughput), 1 MB messages: no
 *   pacing, prefetch 100, 100 tasks per message (fewer operations, less CPU per task).
 * - no tier: adaptive pacing (none until the namespace first answers `ServerBusy`; the rule and
 *   its figures are in `adaptive-pacing.ts`), prefetch 100, one task per message.
 * @module
 */

/** The tiers the transport knows defaults for. */
export type ServiceBusTierName = 'standard' | 'premium';

/** Defaults the transport applies for a tier (each overridable by its own option). */
export interface ServiceBusTierDefaults {
  /** Credit pacing; undefined: none. */
  rateLimit: { creditsPerSecond: number; burst: number } | undefined;
  /** Messages each receiver buffers. */
  prefetchCount: number;
  /** Tasks per task message recommended to the engine. */
  packTasks: number;
}

/** The defaults of `tier`. */
export function serviceBusTierDefaults(tier: ServiceBusTierName): ServiceBusTierDefaults {
  return tier === 'standard'
    ? { rateLimit: { creditsPerSecond: 850, burst: 100 }, prefetchCount: 8, packTasks: 100 }
    : { rateLimit: undefined, prefetchCount: 100, packTasks: 100 };
}
