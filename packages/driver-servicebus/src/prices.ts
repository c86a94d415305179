/**
 * Service Bus list prices and the cost of a transport's operations. Standard bills operations
 * (every API call; the transport counts each message sent, received or settled as one, which is
 * also how the namespace's throttling credits are spent); Premium bills messaging-unit hours and
 * no operations.
 * @module
 */
import type { CostEstimate, TransportUsage } from '@switchyard/core/driver';

/** A price table; pass your own (region, agreement) as `prices` to the transport. */
export interface ServiceBusPrices {
  /** ISO 4217 currency of the prices. */
  currency: string;
  /** When the prices were read, ISO date. */
  asOf: string;
  /** Where they were read. */
  source: string;
  /**
   * Standard: per million operations beyond the 13 million a month the base charge includes (the
   * 13M–100M band; 100M–2,500M costs less, the first 13M nothing at the margin).
   */
  standardPerMillionOperations: number;
  /** Standard: the base charge per hour (not included in a per-operation estimate). */
  standardBasePerHour: number;
  /** Premium: per messaging unit per hour. */
  premiumPerMessagingUnitHour: number;
}

/**
 * Pay-as-you-go list prices, East US, as read on 2026-12-02. Check the pricing page for your
 * region before relying on them.
 */
export const SERVICE_BUS_LIST_PRICES: ServiceBusPrices = {
  currency: 'USD',
  asOf: '2026-12-02',
  source: 'https://azure.microsoft.com/pricing/details/service-bus/ (East US)',
  standardPerMillionOperations: 0.8,
  standardBasePerHour: 0.0135,
  premiumPerMessagingUnitHour: 0.928,
};

/** What {@link serviceBusCost} prices. */
export interface ServiceBusCostInput {
  usage: TransportUsage;
  tier: 'standard' | 'premium';
  /** Premium: messaging units. @defaultValue 1 */
  messagingUnits?: number;
  /** Premium: how long the namespace was busy for the operations counted, ms. */
  activeMs?: number;
  prices?: ServiceBusPrices;
}

/** The cost of a transport's operations at `prices` (Standard: operations; Premium: unit hours while busy). */
export function serviceBusCost(input: ServiceBusCostInput): CostEstimate {
  const prices = input.prices ?? SERVICE_BUS_LIST_PRICES;
  if (input.tier === 'premium') {
    const units = input.messagingUnits ?? 1;
    const hours = (input.activeMs ?? 0) / 3_600_000;
    return {
      currency: prices.currency,
      amount: hours * units * prices.premiumPerMessagingUnitHour,
      basis: `Service Bus Premium list price of ${prices.asOf}: ${prices.currency} ${prices.premiumPerMessagingUnitHour} per messaging unit-hour × ${units} unit(s) × the time the transport was busy; operations are not billed (${prices.source})`,
    };
  }
  return {
    currency: prices.currency,
    amount: (input.usage.billable / 1_000_000) * prices.standardPerMillionOperations,
    basis: `Service Bus Standard list price of ${prices.asOf}: ${prices.currency} ${prices.standardPerMillionOperations} per million operations (13M–100M band), each message sent, received or settled one; base charge ${prices.currency} ${prices.standardBasePerHour}/hour not included (${prices.source})`,
  };
}
