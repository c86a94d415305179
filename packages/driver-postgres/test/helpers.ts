import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll } from 'vitest';
import type { PGliteLike } from '../src/adapter.js';

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** True if the server answers; with REQUIRE_SERVICES=1 an unreachable server is an error. */
export async function serverAvailable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch (err) {
    if (process.env.REQUIRE_SERVICES === '1') {
      throw new Error(
        `REQUIRE_SERVICES=1 but PostgreSQL at ${redact(DATABASE_URL)} is unreachable: ${(err as Error).message}`,
      );
    }
    console.warn(
      `[driver-postgres tests] PostgreSQL at ${redact(DATABASE_URL)} unreachable; skipping the server variant (PGlite still runs). Set REQUIRE_SERVICES=1 to fail instead.`,
    );
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

function redact(url: string): string {
  return url.replace(/:[^:@/]*@/, ':***@');
}

export const randomSchema = (prefix = 't') => `${prefix}_${randomBytes(6).toString('hex')}`;

/**
 * A test database engine: hands out fresh schemas and drops them all after the file.
 * `server` uses DATABASE_URL; `pglite` one in-memory PGlite per file (slow to start, shared).
 */
export interface Engine {
  name: 'server' | 'pglite';
  /** Connection options for a driver (a new pool per call on the server). */
  connection(): { connectionString: string } | { pglite: PGliteLike };
  schema(): string;
  /** Runs SQL outside any driver (assertions, cleanup). */
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
}

export function serverEngine(): Engine {
  const schemas: string[] = [];
  let admin: pg.Pool | undefined;
  const pool = () => (admin ??= new pg.Pool({ connectionString: DATABASE_URL, max: 2 }));
  afterAll(async () => {
    if (!admin && schemas.length === 0) return;
    for (const s of schemas) await pool().query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await admin?.end();
  });
  return {
    name: 'server',
    connection: () => ({ connectionString: DATABASE_URL }),
    schema: () => {
      const s = randomSchema();
      schemas.push(s);
      return s;
    },
    query: async (text, params = []) => (await pool().query(text, params)).rows,
  };
}

export function pgliteEngine(): Engine {
  const schemas: string[] = [];
  let db: PGlite | undefined;
  const get = () => (db ??= new PGlite());
  afterAll(async () => {
    if (!db) return;
    for (const s of schemas) await db.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await db.close();
  });
  return {
    name: 'pglite',
    connection: () => ({ pglite: get() as unknown as PGliteLike }),
    schema: () => {
      const s = randomSchema();
      schemas.push(s);
      return s;
    },
    query: async (text, params = []) => (await get().query(text, params)).rows as never,
  };
}

/** The engines to run: PGlite always, the server when reachable. */
export async function engines(): Promise<Engine[]> {
  return (await serverAvailable()) ? [serverEngine(), pgliteEngine()] : [pgliteEngine()];
}
