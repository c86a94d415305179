/**
 * PostgreSQL for Switchyard: a {@link postgresStore} (jobs, stages, tasks, the fan-in barrier) and
 * a {@link postgresTransport} (a `FOR UPDATE SKIP LOCKED` queue), on a real server through `pg` or
 * in process on PGlite, so one database runs everything.
 *
 * @example
 * ```ts
 * import { postgresStore, postgresTransport } from '@switchyard/driver-postgres';
 * import { PGlite } from '@electric-sql/pglite';
 *
 * const db = new PGlite('./.switchyard-data');
 * const store = postgresStore({ pglite: db });
 * const transport = postgresTransport({ pglite: db });
 * await store.init();
 * // or, on a server: postgresStore({ connectionString: process.env.DATABASE_URL })
 * ```
 * @module
 */

export type { ConnectionOptions, PGliteLike } from './adapter.js';
export { loadMigrations, type Migration } from './migrate.js';
export {
  POSTGRES_LIST_PRICES,
  type PostgresCostInput,
  type PostgresPrices,
  postgresCost,
} from './prices.js';
export { type PostgresStore, type PostgresStoreOptions, postgresStore } from './store.js';
export {
  type PostgresStatementKind,
  type PostgresTransport,
  type PostgresTransportOptions,
  type PostgresTransportUsage,
  postgresTransport,
} from './transport.js';
