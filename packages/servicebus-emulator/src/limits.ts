/**
 * Applies a {@link TierProfile} to the operations the server handles: size and transaction
 * limits on sends, credits on sends, management operations and dispositions.
 * @module
 */
import { asArray, toNumber } from './amqp.js';
import { CreditThrottle, SERVER_BUSY, type ThrottleStats } from './throttle.js';
import type { TierProfile } from './tiers.js';

/** Why an operation is refused: the AMQP error condition and text the service uses. */
export interface Refusal {
  condition: string;
  description: string;
  /** The management status code for the same refusal. */
  status: number;
}

export class NamespaceLimits {
  readonly throttle: CreditThrottle | undefined;

  constructor(readonly profile: TierProfile) {
    this.throttle =
      profile.operationsPerSecond === undefined
        ? undefined
        : new CreditThrottle(profile.operationsPerSecond, profile.throttlePenaltyMs);
  }

  /** Checks a send of `count` messages in `bytes` bytes; charges its credits when admitted. */
  admitSend(count: number, bytes: number | undefined, now: number): Refusal | undefined {
    const { maxMessagesPerTransaction, maxMessageSizeBytes } = this.profile;
    if (maxMessagesPerTransaction !== undefined && count > maxMessagesPerTransaction) {
      return {
        condition: 'amqp:resource-limit-exceeded',
        description: `The batch has ${count} messages; a ${this.profile.tier} namespace takes at most ${maxMessagesPerTransaction} per transaction.`,
        status: 403,
      };
    }
    if (bytes !== undefined && bytes > maxMessageSizeBytes) {
      return {
        condition: 'amqp:link:message-size-exceeded',
        description: `The received message (${bytes} bytes) exceeds the limit (${maxMessageSizeBytes} bytes) of a ${this.profile.tier} namespace.`,
        status: 403,
      };
    }
    return this.charge(count, now);
  }

  /** Charges a `$management` operation one credit per message or lock token it names. */
  admitManagement(
    operation: string,
    body: Record<string, unknown>,
    now: number,
  ): Refusal | undefined {
    return this.charge(managementCredits(operation, body), now);
  }

  /** A disposition on a receive link is applied whatever the balance; its credit is still spent. */
  chargeDisposition(now: number): void {
    this.throttle?.chargeAnyway(1, now);
  }

  stats(): ThrottleStats {
    return this.throttle
      ? { ...this.throttle.stats }
      : { credits: 0, throttled: 0, deliveriesDelayed: 0 };
  }

  private charge(credits: number, now: number): Refusal | undefined {
    if (!this.throttle || this.throttle.tryCharge(credits, now)) return undefined;
    return { ...SERVER_BUSY, status: 503 };
  }
}

/** Credits of one `$management` request: one per message or lock token it carries. */
function managementCredits(operation: string, body: Record<string, unknown>): number {
  switch (operation) {
    case 'com.microsoft:renew-lock':
    case 'com.microsoft:update-disposition':
      return Math.max(1, asArray(body['lock-tokens']).length);
    case 'com.microsoft:schedule-message':
      return Math.max(1, asArray(body.messages).length);
    case 'com.microsoft:peek-message':
      return Math.max(1, toNumber(body['message-count']) ?? 1);
    case 'com.microsoft:receive-by-sequence-number':
    case 'com.microsoft:cancel-scheduled-message':
      return Math.max(1, asArray(body['sequence-numbers']).length);
    default:
      return 1;
  }
}
