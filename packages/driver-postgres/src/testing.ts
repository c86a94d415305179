/**
 * Stores for other packages' tests: the real server when `DATABASE_URL` is set, each store in a
 * schema of its own (so runs never see each other's rows) that {@link ScratchStores.dropAll}
 * removes; the memory store otherwise.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { memoryStore } from '@switchyard/core';
import type { Store } from '@switchyard/core/driver';
import pg from 'pg';
import { postgresStore } from './store.js';

export interface ScratchStores {
  /** `'postgres'` with `DATABASE_URL` set, else `'memory'`: for test names. */
  readonly kind: 'postgres' | 'memory';
  /** A new store: a fresh schema on `DATABASE_URL`, or a memory store. */
  create(): Store;
  /** Drops every schema `create()` made. */
  dropAll(): Promise<void>;
}

/**
 * @param prefix schema name prefix (letters, digits, `_`), so leftovers name their test file.
 * @example
 * ```ts
 * const stores = scratchStores('sq_engine');
 * afterAll(() => stores.dropAll());
 * const store = stores.create();
 * ```
 */
export function scratchStores(prefix: string): ScratchStores {
  const url = process.env.DATABASE_URL;
  const schemas: string[] = [];
  return {
    kind: url ? 'postgres' : 'memory',
    create() {
      if (!url) return memoryStore();
      const schema = `${prefix}_${randomBytes(5).toString('hex')}`;
      schemas.push(schema);
      return postgresStore({ connectionString: url, schema });
    },
    async dropAll() {
      if (!url || schemas.length === 0) return;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        for (const schema of schemas.splice(0)) {
          await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        }
      } finally {
        await client.end();
      }
    },
  };
}
