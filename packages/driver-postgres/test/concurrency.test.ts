import { type TaskOutcome, taskId } from '@switchyard/core/driver';
import { afterEach, describe, expect, it } from 'vitest';
import { type PostgresStore, postgresStore } from '../src/index.js';
import { type Engine, pgliteEngine, serverAvailable, serverEngine } from './helpers.js';

const server = await serverAvailable();
const engineList: Engine[] = server ? [serverEngine(), pgliteEngine()] : [pgliteEngine()];

for (const engine of engineList) {
  describe(`concurrency (${engine.name})`, () => {
    let stores: PostgresStore[] = [];
    afterEach(async () => {
      await Promise.all(stores.map((s) => s.close()));
      stores = [];
    });
    /** Several stores on one schema; on the server each has its own pool of 4 connections. */
    const open = (count: number, schema = engine.schema()) => {
      const made = Array.from({ length: count }, () =>
        postgresStore({ ...engine.connection(), schema, poolSize: 4 }),
      );
      stores.push(...made);
      return made;
    };

    it('two init()s on a fresh schema do not race; migrations are recorded once', async () => {
      const schema = engine.schema();
      const [a, b] = open(2, schema) as [PostgresStore, PostgresStore];
      const [ra, rb] = await Promise.all([a.migrate(), b.migrate()]);
      // Exactly one of them applied everything, the other found it done.
      expect([ra.length, rb.length].sort()).toEqual([0, ra.length + rb.length]);
      expect(ra.length + rb.length).toBeGreaterThanOrEqual(2);
      const rows = await engine.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM "${schema}".migrations`,
      );
      expect(rows[0]?.n).toBe(ra.length + rb.length);
      expect(await a.migrate()).toEqual([]);
      const [c] = open(1, schema) as [PostgresStore];
      expect(await c.migrate()).toEqual([]);
    });

    it('startStage from 10 concurrent callers on separate pools advances exactly once', async () => {
      const all = open(4);
      const first = all[0]!;
      await first.init();
      await first.createJob({
        id: 'cas',
        name: 'x',
        params: {},
        transport: 'postgres',
        stageCount: 3,
      });
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => all[i % all.length]!.startStage('cas', 0, 's0')),
      );
      expect(results.filter((r) => r.advanced)).toHaveLength(1);
      for (const r of results) expect(r.job.currentStage).toBe(0);
      const next = await Promise.all(
        Array.from({ length: 10 }, (_, i) => all[i % all.length]!.startStage('cas', 1, 's1')),
      );
      expect(next.filter((r) => r.advanced)).toHaveLength(1);
      expect((await first.getStages('cas')).map((s) => s.index)).toEqual([0, 1]);
    });

    it('keeps the barrier exact with 4 pools hammering one stage, duplicates overlapping, seals racing', {
      timeout: 120_000,
    }, async () => {
      const all = open(4);
      const first = all[0]!;
      await first.init();
      const n = engine.name === 'server' ? 3000 : 1000;
      await first.createJob({
        id: 'hammer',
        name: 'x',
        params: {},
        transport: 'postgres',
        stageCount: 1,
      });
      await first.startStage('hammer', 0, 's');
      await first.insertTasks(
        'hammer',
        0,
        Array.from({ length: n }, (_, index) => ({ index, input: index })),
      );
      const outcome = (i: number): TaskOutcome => ({
        jobId: 'hammer',
        stage: 0,
        index: i,
        taskId: taskId('hammer', 0, i),
        ...(i % 10 === 0
          ? { status: 'failed', error: { name: 'E', message: `task ${i}` } }
          : { status: 'succeeded', result: { i } }),
      });
      // Every task completed three times: singly, and in two differently shuffled batch layouts.
      const batches: TaskOutcome[][] = [];
      const shuffled = () => Array.from({ length: n }, (_, i) => i).sort(() => Math.random() - 0.5);
      for (const i of shuffled()) if (i % 7 === 0) batches.push([outcome(i)]);
      for (let copy = 0; copy < 2; copy++) {
        const order = shuffled();
        for (let i = 0; i < order.length; ) {
          const size = 1 + Math.floor(Math.random() * 60);
          batches.push(order.slice(i, i + size).map(outcome));
          i += size;
        }
      }
      batches.sort(() => Math.random() - 0.5);
      let next = 0;
      const results: { applied: string[]; completed: number }[] = [];
      const workers = all.flatMap((store) =>
        Array.from({ length: 4 }, async () => {
          while (next < batches.length) {
            const batch = batches[next++]!;
            const r = await store.completeTasks(batch);
            results.push({ applied: r.applied, completed: r.completedStages.length });
          }
        }),
      );
      // Every store tries to seal, while completions are in flight.
      const seals = all.map((store, i) =>
        new Promise((r) => setTimeout(r, 5 + i * 3)).then(() => store.sealStage('hammer', 0, n)),
      );
      await Promise.all(workers);
      const sealed = await Promise.all(seals);
      const reports =
        results.reduce((sum, r) => sum + r.completed, 0) + sealed.filter(Boolean).length;
      expect(reports).toBe(1);
      const applied = results.flatMap((r) => r.applied);
      expect(applied).toHaveLength(n);
      expect(new Set(applied).size).toBe(n);
      const [stage] = await first.getStages('hammer');
      expect(stage).toMatchObject({
        status: 'complete',
        total: n,
        succeeded: n - n / 10,
        failed: n / 10,
        created: n,
      });
      const counts = await engine.query<{ status: string; n: number }>(
        `SELECT status, count(*)::int AS n FROM "${first.schema}".tasks WHERE job_id = 'hammer' GROUP BY status ORDER BY status`,
      );
      expect(counts).toEqual([
        { status: 'failed', n: n / 10 },
        { status: 'succeeded', n: n - n / 10 },
      ]);
    });
  });
}
