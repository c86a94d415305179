/**
 * Service Bus tier profiles: the limits a real namespace enforces, so tests and benchmarks meet
 * them locally. Each figure names its source; all were read on 2026-12-02.
 *
 * - Standard — credit-based throttling: 1,000 credits per second per namespace; a data operation
 *   (send, receive, peek) costs one credit per message, a management operation (create, read,
 *   update, delete of an entity) ten. Beyond the credits the service answers
 *   `com.microsoft:server-busy` ("The request was terminated because the entity is being
 *   throttled. Error code: 50009. Please wait 2 seconds and try again.").
 *   Source: https://learn.microsoft.com/azure/service-bus-messaging/service-bus-throttling
 *   Settlements (complete, abandon, dead-letter) are charged one credit each as well: the
 *   service counts them as operations on the namespace, and the driver budgets them too.
 *   Messages and batches: 256 KB; 100 messages per transaction (a batch send is committed as one).
 *   Source: https://learn.microsoft.com/azure/service-bus-messaging/service-bus-quotas
 * - Premium — no credit throttling; 1 MB messages (up to 100 MB with large-message support, not
 *   modelled). Throughput scales with messaging units (1, 2, 4, 8, 16); Microsoft publishes no
 *   per-unit rate ("varies with workload"), so it is an option here:
 *   {@link TierOptions.operationsPerMessagingUnit}.
 *   Source: https://learn.microsoft.com/azure/service-bus-messaging/service-bus-premium-messaging
 * - `unlimited` — the emulator as it always was: no throttling, 1 MiB link limit.
 * @module
 */

/** The tier profiles the emulator models. */
export type ServiceBusTier = 'unlimited' | 'standard' | 'premium';

/** Overrides of a tier's figures. */
export interface TierOptions {
  /** Standard: credits per second per namespace. @defaultValue 1000 */
  creditsPerSecond?: number;
  /**
   * How long a throttled namespace keeps answering `server-busy` after its credits ran out (at
   * least until its next one-second period starts). @defaultValue 2000 (the wait the service's
   * throttling message asks for)
   */
  throttlePenaltyMs?: number;
  /** Premium: messaging units. @defaultValue 1 */
  messagingUnits?: number;
  /**
   * Premium: operations per second one messaging unit serves before `server-busy`. Not a published
   * figure. @defaultValue 4000
   */
  operationsPerMessagingUnit?: number;
}

/** The limits of one tier as the emulator enforces them. */
export interface TierProfile {
  readonly tier: ServiceBusTier;
  /** Largest message and batch transfer, bytes (advertised as the link's `max-message-size`). */
  readonly maxMessageSizeBytes: number;
  /** Most messages one batch send may carry; undefined: no limit. */
  readonly maxMessagesPerTransaction: number | undefined;
  /** Operations (credits) per second per namespace; undefined: no throttling. */
  readonly operationsPerSecond: number | undefined;
  /** See {@link TierOptions.throttlePenaltyMs}. */
  readonly throttlePenaltyMs: number;
}

const KB = 1024;

/** The profile of `tier` with `options` applied. */
export function tierProfile(tier: ServiceBusTier, options: TierOptions = {}): TierProfile {
  switch (tier) {
    case 'standard':
      return {
        tier,
        maxMessageSizeBytes: 256 * KB,
        maxMessagesPerTransaction: 100,
        operationsPerSecond: positive('creditsPerSecond', options.creditsPerSecond ?? 1000),
        throttlePenaltyMs: nonNegative('throttlePenaltyMs', options.throttlePenaltyMs ?? 2000),
      };
    case 'premium':
      return {
        tier,
        maxMessageSizeBytes: 1024 * KB,
        maxMessagesPerTransaction: 100,
        operationsPerSecond:
          positive('messagingUnits', options.messagingUnits ?? 1) *
          positive('operationsPerMessagingUnit', options.operationsPerMessagingUnit ?? 4000),
        throttlePenaltyMs: nonNegative('throttlePenaltyMs', options.throttlePenaltyMs ?? 0),
      };
    case 'unlimited':
      return {
        tier,
        maxMessageSizeBytes: 1024 * KB,
        maxMessagesPerTransaction: undefined,
        operationsPerSecond: undefined,
        throttlePenaltyMs: 0,
      };
    default:
      throw new RangeError(`unknown Service Bus tier '${String(tier)}'`);
  }
}

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`${name} must be positive`);
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!(Number.isFinite(value) && value >= 0)) throw new RangeError(`${name} must be zero or more`);
  return value;
}
