import { memoryStore, type Store } from '@switchyard/core';
import { crashWindowSuite } from '@switchyard/core/testing';
import { afterAll, describe } from 'vitest';
import { storageQueueTransport } from '../src/index.js';
import { connectionString, deleteQueues, uniqueName } from './helpers.js';

const prefix = uniqueName('cw');
const schemas: string[] = [];

/** The Postgres store on DATABASE_URL (a fresh schema per test), else the memory store. */
async function store(): Promise<Store> {
  const url = process.env.DATABASE_URL;
  if (!url) return memoryStore();
  const { postgresStore } = await import('@switchyard/driver-postgres');
  const schema = `cw_${uniqueName('s').replace(/-/g, '_')}`;
  schemas.push(schema);
  return postgresStore({ connectionString: url, schema });
}

describe.skipIf(!connectionString)('storage queues (Azurite)', () => {
  afterAll(async () => {
    await deleteQueues(prefix);
    if (schemas.length === 0 || !process.env.DATABASE_URL) return;
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  crashWindowSuite(
    `${process.env.DATABASE_URL ? 'postgres' : 'memory'} store + storage queue transport`,
    {
      store,
      transport: () => {
        const base = uniqueName(prefix);
        return storageQueueTransport({
          connectionString,
          queues: { stage: `${base}-s`, task: `${base}-t` },
          visibilityTimeoutMs: 1000,
        });
      },
      visibilityMs: 1000,
      testTimeoutMs: 90_000,
    },
  );
});
