import { randomBytes } from 'node:crypto';
import { memoryStore, type Store } from '@switchyard/core';
import { crashWindowSuite } from '@switchyard/core/testing';
import { afterAll, describe } from 'vitest';
import { emulatorTransport, tryStartEmulator } from './emulator.js';

const emulator = await tryStartEmulator();
const schemas: string[] = [];

afterAll(async () => {
  await emulator?.close();
  if (schemas.length === 0 || !process.env.DATABASE_URL) return;
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

/** The Postgres store on DATABASE_URL (a fresh schema per test), else the memory store. */
async function store(): Promise<Store> {
  const url = process.env.DATABASE_URL;
  if (!url) return memoryStore();
  const { postgresStore } = await import('@switchyard/driver-postgres');
  const schema = `cw_sb_${randomBytes(5).toString('hex')}`;
  schemas.push(schema);
  return postgresStore({ connectionString: url, schema });
}

describe.skipIf(!emulator)('service bus (emulator)', () => {
  crashWindowSuite(
    `${process.env.DATABASE_URL ? 'postgres' : 'memory'} store + service bus transport`,
    {
      store,
      transport: () => emulatorTransport(emulator!, {}, { lockDurationMs: 1000 }).transport,
      visibilityMs: 1000,
      testTimeoutMs: 90_000,
    },
  );
});
