import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { isConflict, retryConflicts } from '../src/conflicts.js';
import { postgresStore } from '../src/index.js';
import { DATABASE_URL, serverAvailable } from './helpers.js';

describe('retryConflicts', () => {
  const conflict = (code: string) => Object.assign(new Error(code), { code });

  it('re-runs after deadlocks and serialization failures, then returns the result', async () => {
    let calls = 0;
    const retried: number[] = [];
    const result = await retryConflicts(
      async () => {
        calls++;
        if (calls === 1) throw conflict('40P01');
        if (calls === 2) throw new Error('wrapped', { cause: conflict('40001') });
        return 'ok';
      },
      { initialDelayMs: 1, onRetry: (_err, n) => retried.push(n) },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(3);
    expect(retried).toEqual([1, 2]);
  });

  it('throws any other error at once, and a conflict once the retries are spent', async () => {
    let calls = 0;
    await expect(
      retryConflicts(async () => {
        calls++;
        throw conflict('23505');
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(calls).toBe(1);
    calls = 0;
    await expect(
      retryConflicts(
        async () => {
          calls++;
          throw conflict('40P01');
        },
        { retries: 3, initialDelayMs: 1 },
      ),
    ).rejects.toMatchObject({ code: '40P01' });
    expect(calls).toBe(4);
    expect(isConflict(new Error('x'))).toBe(false);
  });
});

const server = await serverAvailable();

describe.runIf(server)('a deadlock on the server (the store is the victim)', () => {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });

  it('is re-run inside the driver: the caller gets its result, applied once', {
    timeout: 30_000,
  }, async () => {
    const codes: string[] = [];
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
    (pool as unknown as { query: typeof query }).query = async (...args) => {
      try {
        return await query(...args);
      } catch (err) {
        codes.push(String((err as { code?: unknown }).code));
        throw err;
      }
    };
    const store = postgresStore({ pool, schema });
    try {
      await store.init();
      for (const id of ['ja', 'jb']) {
        await store.createJob({ id, name: 'x', params: {}, transport: 'p', stageCount: 1 });
        await store.startStage(id, 0, 's');
      }
      // Outside the driver: a transaction holding jb's stage row that will then want ja's.
      const other = await admin.connect();
      try {
        await other.query('BEGIN');
        await other.query(`SELECT 1 FROM "${schema}".stages WHERE job_id = 'jb' FOR UPDATE`);
        // admitPacks locks ja, then waits for jb; the outside transaction then asks for ja.
        const admitted = store.admitPacks([
          { jobId: 'ja', stage: 0, tasks: 3 },
          { jobId: 'jb', stage: 0, tasks: 5 },
        ]);
        await new Promise((r) => setTimeout(r, 300));
        const closing = other
          .query(`SELECT 1 FROM "${schema}".stages WHERE job_id = 'ja' FOR UPDATE`)
          .then(() => other.query('COMMIT'))
          .catch(() => other.query('ROLLBACK'));
        expect(await admitted).toEqual([true, true]);
        await closing;
      } finally {
        other.release();
      }
      // The statement waited first, so the server's deadlock check (deadlock_timeout after a wait
      // starts) ran in its session and chose it: it failed once, re-ran, and added its counts once.
      expect(codes).toEqual(['40P01']);
      const stages = await admin.query<{ job_id: string; running: number }>(
        `SELECT job_id, running FROM "${schema}".stages ORDER BY job_id`,
      );
      expect(stages.rows).toEqual([
        { job_id: 'ja', running: 3 },
        { job_id: 'jb', running: 5 },
      ]);
    } finally {
      await store.close();
      await pool.end();
    }
  });
});
