/**
 * PostgreSQL list prices and the cost of the queue transport's statements. Azure Database for
 * PostgreSQL Flexible Server bills compute per hour of a provisioned server (its vCores), storage
 * per GB-month, and no statement; so the transport's share is priced as the server's hourly price
 * × the time the transport had at least one statement in flight.
 * @module
 */
import type { CostEstimate, TransportUsage } from '@switchyard/core/driver';

/** A price table; pass your own (SKU, region, agreement) as `prices` to the transport. */
export interface PostgresPrices {
  /** ISO 4217 currency of the prices. */
  currency: string;
  /** When the prices were read, ISO date. */
  asOf: string;
  /** Where they were read. */
  source: string;
  /** The server the price is for: tier, compute size, vCores, region, agreement. */
  sku: string;
  /** Compute of that server per hour (storage, backups and high availability not included). */
  serverPerHour: number;
}

/**
 * Pay-as-you-go list price of an Azure Database for PostgreSQL Flexible Server, General Purpose
 * D2ds_v5 (2 vCores, 8 GiB), East US, as read on 2026-12-03. Check the pricing page for your
 * region and compute size before relying on it, and pass your own as `prices`.
 */
export const POSTGRES_LIST_PRICES: PostgresPrices = {
  currency: 'USD',
  asOf: '2026-12-03',
  source: 'https://azure.microsoft.com/pricing/details/postgresql/flexible-server/',
  sku: 'Flexible Server General Purpose D2ds_v5, 2 vCores, East US, pay-as-you-go',
  serverPerHour: 0.178,
};

/** What {@link postgresCost} prices. */
export interface PostgresCostInput {
  /** The statements counted (the estimate itself depends on `busyMs` only). */
  usage: TransportUsage;
  /** How long the transport had at least one statement in flight, ms. */
  busyMs: number;
  /** The server's price. @defaultValue {@link POSTGRES_LIST_PRICES} */
  prices?: PostgresPrices;
}

/**
 * The cost of the transport's statements at `prices`: the server's hourly price × the time the
 * transport had a statement in flight. The `basis` says what is left out.
 *
 * @example
 * ```ts
 * const cost = postgresCost({ usage: transport.usage(), busyMs: 90_000 }); // 1.5 busy minutes
 * ```
 */
export function postgresCost(input: PostgresCostInput): CostEstimate {
  const prices = input.prices ?? POSTGRES_LIST_PRICES;
  const busyMs = Math.max(0, input.busyMs);
  const statements = input.usage.billable;
  return {
    currency: prices.currency,
    amount: (busyMs / 3_600_000) * prices.serverPerHour,
    basis:
      `Azure Database for PostgreSQL list price of ${prices.asOf} (${prices.sku}; check it for your region and size): ` +
      `${prices.currency} ${prices.serverPerHour} per server-hour × the ${(busyMs / 1000).toFixed(3)} s the transport had a statement in flight ` +
      `(${statements} statement${statements === 1 ? '' : 's'}, timed at the client, waits for a connection included); ` +
      `PostgreSQL bills no statement. Not included: storage and backups, the server's idle hours, ` +
      `the store's statements (jobs, tasks, the barrier: the same on every path) and other clients of the server (${prices.source})`,
  };
}
