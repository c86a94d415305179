/**
 * Queue Storage list prices and the cost of a transport's operations. Storage bills one
 * transaction per REST call: a `PutMessage` per message sent (there is no batch send), one
 * `GetMessages` per receive of up to 32 messages, a `DeleteMessage` per message completed.
 * @module
 */
import type { CostEstimate, TransportUsage } from '@switchyard/core/driver';

/** A price table; pass your own (region, redundancy, agreement) as `prices` to the transport. */
export interface StorageQueuePrices {
  /** ISO 4217 currency of the prices. */
  currency: string;
  /** When the prices were read, ISO date. */
  asOf: string;
  /** Where they were read. */
  source: string;
  /** Class 1 operations (writes: PutMessage, UpdateMessage, CreateQueue, ClearMessages), per 10,000. */
  class1PerTenThousand: number;
  /** Class 2 operations (reads and the rest: GetMessages, PeekMessages, DeleteMessage, GetProperties), per 10,000. */
  class2PerTenThousand: number;
}

/**
 * Pay-as-you-go list prices of Queue Storage on a general-purpose v2 account, LRS, East US, as
 * read on 2026-12-02. Check the pricing page for your region before relying on them.
 */
export const STORAGE_QUEUE_LIST_PRICES: StorageQueuePrices = {
  currency: 'USD',
  asOf: '2026-12-02',
  source:
    'https://azure.microsoft.com/pricing/details/storage/queues/ (general purpose v2, LRS, East US)',
  class1PerTenThousand: 0.04,
  class2PerTenThousand: 0.004,
};

/** Operation kinds counted by the transport that price as class 1; every other kind is class 2. */
const CLASS_1 = new Set(['putMessage', 'updateMessage', 'createQueue', 'clearMessages']);

/** The cost of `usage` at `prices` (storage capacity, a few KB in flight, is left out). */
export function storageQueueCost(
  usage: TransportUsage,
  prices: StorageQueuePrices = STORAGE_QUEUE_LIST_PRICES,
): CostEstimate {
  let class1 = 0;
  let class2 = 0;
  for (const [kind, n] of Object.entries(usage.operations)) {
    if (CLASS_1.has(kind)) class1 += n;
    else class2 += n;
  }
  const amount =
    (class1 * prices.class1PerTenThousand + class2 * prices.class2PerTenThousand) / 10_000;
  return {
    currency: prices.currency,
    amount,
    basis: `Queue Storage list prices of ${prices.asOf} (${prices.currency} ${prices.class1PerTenThousand} per 10,000 class 1, ${prices.class2PerTenThousand} per 10,000 class 2 operations; ${prices.source}); capacity not included`,
  };
}
