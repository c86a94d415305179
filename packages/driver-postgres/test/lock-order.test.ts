/**
 * The lock order under contention: several stores (on the server, each its own pool) run the hot
 * statements — claims, admissions, pack admissions, window releases, retries, barrier batches,
 * re-drive touches and a cancel — against each other on four jobs at once, every batch naming tasks and stages of
 * several jobs in a shuffled order, duplicates overlapping across stores. On the server each pool
 * reports every error the database returned, before the driver's conflict retry sees it: one
 * `40P01` (or `40001`) fails the test. PGlite is one session, where nothing can wait in a cycle;
 * there the same run checks that the statements keep the counters exact.
 */

import { type ClaimRef, type TaskOutcome, type TaskRetry, taskId } from '@switchyard/core/driver';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { type PostgresStore, postgresStore } from '../src/index.js';
import { DATABASE_URL, type Engine, engines } from './helpers.js';

const JOBS = ['ja', 'jb', 'jc'];
const CANCELLED = 'jd';

/** A pool that records the SQLSTATE of every failed statement (the driver's retry sees it after). */
function watchedPool(codes: string[]): pg.Pool {
  const pool = new pg.Pool({
    connectionString: DATABASE_URL,
    max: 4,
    options: '-c plan_cache_mode=force_generic_plan',
  });
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = async (
    ...args: unknown[]
  ) => {
    try {
      return await query(...args);
    } catch (err) {
      codes.push(String((err as { code?: unknown }).code ?? 'none'));
      throw err;
    }
  };
  return pool;
}

function shuffle<T>(list: T[]): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}

/** Batches of `size` over `keys`, shuffled, for one store. */
function batchesOf<T>(keys: T[], size: number): T[][] {
  const order = shuffle([...keys]);
  const out: T[][] = [];
  for (let i = 0; i < order.length; i += size) out.push(order.slice(i, i + size));
  return out;
}

const engineList: Engine[] = await engines();

for (const engine of engineList) {
  describe(`lock order (${engine.name})`, () => {
    let stores: PostgresStore[] = [];
    let pools: pg.Pool[] = [];
    afterEach(async () => {
      await Promise.all(stores.map((s) => s.close()));
      await Promise.all(pools.map((p) => p.end()));
      stores = [];
      pools = [];
    });

    it('runs claims, admissions, releases, retries, barrier batches, touches and a cancel over four jobs with no deadlock', {
      timeout: 120_000,
    }, async () => {
      const schema = engine.schema();
      const codes: string[] = [];
      const storeCount = engine.name === 'server' ? 4 : 2;
      for (let i = 0; i < storeCount; i++) {
        if (engine.name === 'server') {
          const pool = watchedPool(codes);
          pools.push(pool);
          stores.push(postgresStore({ pool, schema }));
        } else stores.push(postgresStore({ ...engine.connection(), schema }));
      }
      const first = stores[0]!;
      await first.init();
      const n = engine.name === 'server' ? 800 : 100;
      for (const jobId of [...JOBS, CANCELLED]) {
        await first.createJob({
          id: jobId,
          name: 'x',
          params: {},
          transport: 'postgres',
          stageCount: 1,
        });
        await first.startStage(jobId, 0, 's');
        await first.insertTasks(
          jobId,
          0,
          Array.from({ length: n }, (_, index) => ({ index, input: index })),
        );
        await first.sealStage(jobId, 0, n);
      }
      const all = [...JOBS, CANCELLED].flatMap((jobId) =>
        Array.from({ length: n }, (_, i) => ({ jobId, stage: 0, taskId: taskId(jobId, 0, i), i })),
      );
      const completed: { applied: string[]; stages: string[] }[] = [];
      // Each store claims, retries and completes every task (duplicates across stores), in its
      // own shuffled batches of tasks from every job, while its pack admissions, window releases
      // and re-drive touches name the same stages and tasks in other orders.
      const runStore = async (store: PostgresStore, no: number) => {
        for (const batch of batchesOf(all, 40 + no * 17)) {
          const claims: ClaimRef[] = batch.map((t) => ({
            jobId: t.jobId,
            stage: 0,
            index: t.i,
            taskId: t.taskId,
            ...(t.i % 3 === no % 3 ? {} : { admitOnly: true }),
          }));
          const admissions = shuffle(
            [...JOBS, CANCELLED].map((jobId) => ({ jobId, stage: 0, tasks: 4 })),
          );
          const retries: TaskRetry[] = batch
            .filter((t) => t.i % 11 === no)
            .map((t) => ({
              jobId: t.jobId,
              stage: 0,
              index: t.i,
              taskId: t.taskId,
              error: { name: 'E', message: 'again' },
              attempt: 1,
            }));
          const outcomes: TaskOutcome[] = shuffle([...batch]).map((t) => ({
            jobId: t.jobId,
            stage: 0,
            index: t.i,
            taskId: t.taskId,
            status: 'succeeded',
            result: t.i,
            attempt: 2,
          }));
          const windows = shuffle(
            [...JOBS, CANCELLED].map((jobId) => ({ jobId, stage: 0, window: 8, fanOut: true })),
          );
          await Promise.all([
            store.claimTasks(claims),
            store.admitPacks(admissions),
            store.releaseTasks(windows),
            store.retryTasks(retries),
            store.touchTasks(shuffle(batch.map((t) => t.taskId))),
          ]);
          const r = await store.completeTasks(outcomes);
          completed.push({ applied: r.applied, stages: r.completedStages.map((c) => c.jobId) });
        }
      };
      const cancel = new Promise((r) => setTimeout(r, 200)).then(() =>
        stores[1]!.cancelJob(CANCELLED),
      );
      // Two streams per store: concurrent batches of one worker meet too.
      await Promise.all([
        ...stores.map((s, no) => runStore(s, no)),
        ...stores.map((s, no) => runStore(s, no + storeCount)),
        cancel,
      ]);

      expect(codes.filter((c) => c === '40P01' || c === '40001')).toEqual([]);
      expect(codes).toEqual([]);
      expect(await cancel).toBe(true);
      const applied = completed.flatMap((c) => c.applied);
      const open = applied.filter((id) => !id.startsWith(`${CANCELLED}.`));
      expect(new Set(open).size).toBe(open.length);
      expect(open).toHaveLength(JOBS.length * n);
      // Each live job's stage is reported complete exactly once.
      const reports = completed.flatMap((c) => c.stages).filter((j) => j !== CANCELLED);
      expect(reports.sort()).toEqual(JOBS);
      for (const jobId of JOBS) {
        const [stage] = await first.getStages(jobId);
        expect(stage).toMatchObject({ status: 'complete', total: n, succeeded: n, failed: 0 });
      }
    });
  });
}
