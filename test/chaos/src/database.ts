/**
 * A database of the campaign's own, created on the server of `DATABASE_URL` and dropped at the end.
 *
 * The server counts deadlocks per database (`pg_stat_database.deadlocks`), and other suites run in
 * the shared `test` database at the same time, so the count there is not the campaign's. A database
 * that only the campaign uses makes every deadlock it counts the campaign's own, without reading
 * (or needing access to) the server's log. `template0` is the copy source: nobody connects to it,
 * so a concurrent session cannot make CREATE DATABASE fail.
 * @module
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface OwnDatabase {
  /** `databaseUrl` with the database replaced (its query parameters kept). */
  url: string;
  name: string;
  /** The server's deadlock count for this database so far. */
  deadlocks(): Promise<number>;
  /**
   * The count once every session that used the database has reported: backends publish their
   * counters when idle for a moment or when they exit, so this reads until two reads a second
   * apart agree (at most `settleMs`).
   */
  settledDeadlocks(settleMs?: number): Promise<number>;
  /** Drops the database, ending any session still in it. */
  drop(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function createOwnDatabase(databaseUrl: string, prefix: string): Promise<OwnDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const maintenance = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  await maintenance.query(`CREATE DATABASE "${name}" TEMPLATE template0`);
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  const deadlocks = async () => {
    // Outside a transaction every read is fresh (stats_fetch_consistency only caches within one).
    const { rows } = await maintenance.query<{ deadlocks: string }>(
      'SELECT deadlocks FROM pg_stat_database WHERE datname = $1',
      [name],
    );
    return Number(rows[0]?.deadlocks ?? 0);
  };
  return {
    url: url.toString(),
    name,
    deadlocks,
    async settledDeadlocks(settleMs = 12_000) {
      const until = Date.now() + settleMs;
      let last = await deadlocks();
      for (;;) {
        await sleep(1000);
        const now = await deadlocks();
        if (now === last || Date.now() > until) return now;
        last = now;
      }
    },
    async drop() {
      // Closed pools end their sessions asynchronously: wait for them, then end what is left.
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          await maintenance.query(`DROP DATABASE IF EXISTS "${name}"`);
          break;
        } catch {
          await sleep(250);
        }
      }
      await maintenance.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {});
      await maintenance.end().catch(() => {});
    },
  };
}
