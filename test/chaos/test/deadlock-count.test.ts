import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createOwnDatabase } from '../src/database.js';
import { DATABASE_URL } from '../src/paths.js';

/** PostgreSQL answers (with REQUIRE_SERVICES=1 it must). */
async function reachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    return true;
  } catch (err) {
    if (process.env.REQUIRE_SERVICES === '1') throw err;
    console.warn(
      `[chaos] PostgreSQL unreachable, deadlock count test skipped: ${(err as Error).message}`,
    );
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** The campaigns' deadlock count: a deadlock provoked in a campaign's own database is counted. */
describe.runIf(await reachable())('deadlocks counted in a campaign database', () => {
  it('counts a deadlock between two sessions of that database', {
    timeout: 60_000,
  }, async () => {
    const db = await createOwnDatabase(DATABASE_URL, 'switchyard_chaos');
    const a = new pg.Client({ connectionString: db.url });
    const b = new pg.Client({ connectionString: db.url });
    try {
      await a.connect();
      await b.connect();
      await a.query('CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)');
      const before = await db.deadlocks();
      await a.query('BEGIN');
      await b.query('BEGIN');
      await a.query('UPDATE t SET id = id WHERE id = 1');
      await b.query('UPDATE t SET id = id WHERE id = 2');
      const outcomes = await Promise.allSettled([
        a.query('UPDATE t SET id = id WHERE id = 2'),
        b.query('UPDATE t SET id = id WHERE id = 1'),
      ]);
      await a.query('ROLLBACK');
      await b.query('ROLLBACK');
      const failed = outcomes.filter((o) => o.status === 'rejected');
      expect(failed.map((o) => (o.reason as { code?: string }).code)).toEqual(['40P01']);
      await a.end();
      await b.end();
      expect((await db.settledDeadlocks()) - before).toBe(1);
    } finally {
      await a.end().catch(() => {});
      await b.end().catch(() => {});
      await db.drop();
    }
  });
});
