import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ReleasedTasks,
  type StageWindow,
  type TaskOutcome,
  taskId,
} from '@switchyard/core/driver';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { type PostgresStore, postgresStore } from '../src/index.js';
import {
  DATABASE_URL,
  type Engine,
  pgliteEngine,
  serverAvailable,
  serverEngine,
} from './helpers.js';

const server = await serverAvailable();
const engineList: Engine[] = server ? [serverEngine(), pgliteEngine()] : [pgliteEngine()];

function shuffle<T>(list: T[]): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}

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

    it('hands each index of windowed stages to exactly one of 8 callers releasing at once, amid completions and a fan-out', {
      timeout: 120_000,
    }, async () => {
      const all = open(4);
      const first = all[0]!;
      await first.init();
      const n = engine.name === 'server' ? 1500 : 300;
      const window = 24;
      // Two stages fanned out before the run; the third during it, 100 tasks per insert in chunks
      // of 25 (on the server 4 chunks at once, committing in any order), each insert followed by
      // the fan-out's own release.
      const before = ['wa', 'wb'];
      const during = 'wc';
      for (const jobId of [...before, during]) {
        await first.createJob({
          id: jobId,
          name: 'x',
          params: {},
          transport: 'postgres',
          stageCount: 1,
        });
        await first.startStage(jobId, 0, 's');
      }
      const inputs = (jobId: string, from: number, count: number) =>
        Array.from({ length: count }, (_, i) => ({
          index: from + i,
          input: { jobId, index: from + i },
        }));
      for (const jobId of before) {
        await first.insertTasks(jobId, 0, inputs(jobId, 0, n));
        await first.sealStage(jobId, 0, n);
      }
      const total = 3 * n;
      /** Times each task was handed out, by task id. */
      const handed = new Map<string, number>();
      /** Handed-out tasks not completed yet: the transport between the callers. */
      const queue: { jobId: string; index: number }[] = [];
      const wrongInputs: unknown[] = [];
      let finished = 0;
      let progressAt = Date.now();
      const take = (released: ReleasedTasks[]) => {
        for (const { jobId, stage, tasks } of released)
          for (const { index, input } of tasks) {
            const id = taskId(jobId, stage, index);
            handed.set(id, (handed.get(id) ?? 0) + 1);
            if (JSON.stringify(input) !== JSON.stringify({ jobId, index })) wrongInputs.push(input);
            queue.push({ jobId, index });
            progressAt = Date.now();
          }
      };
      // Every call names all three stages, in its own order.
      const windows = (fanOut: boolean): StageWindow[] =>
        shuffle([...before, during]).map((jobId) => ({
          jobId,
          stage: 0,
          window,
          ...(fanOut ? { fanOut } : {}),
        }));
      const outcome = ({ jobId, index }: { jobId: string; index: number }): TaskOutcome => ({
        jobId,
        stage: 0,
        index,
        taskId: taskId(jobId, 0, index),
        ...(index % 10 === 0
          ? { status: 'failed', error: { name: 'E', message: `task ${index}` } }
          : { status: 'succeeded', result: index }),
      });
      // A stall (an index released to nobody) leaves tasks unfinished and nothing to hand out.
      const over = () => finished >= total || Date.now() - progressAt > 10_000;
      const caller = async (store: PostgresStore, no: number) => {
        // Half of the callers start as the fan-out of the stages inserted before (a redelivered
        // stage message): they race to window them.
        take(await store.releaseTasks(windows(no % 2 === 0)));
        while (!over()) {
          const batch = queue.splice(0, 1 + Math.floor(Math.random() * 12));
          const [completed, released] = await Promise.all([
            store.completeTasks(batch.map(outcome)),
            store.releaseTasks(windows(false)),
          ]);
          finished += completed.applied.length;
          if (completed.applied.length > 0) progressAt = Date.now();
          take(released);
          if (batch.length === 0 && released.length === 0) await sleep(2);
        }
      };
      const fanOut = async () => {
        const store = postgresStore({
          ...engine.connection(),
          schema: first.schema,
          poolSize: 4,
          insertChunkSize: 25,
        });
        stores.push(store);
        for (let from = 0; from < n; from += 100) {
          await store.insertTasks(during, 0, inputs(during, from, 100));
          take(await store.releaseTasks([{ jobId: during, stage: 0, window, fanOut: true }]));
        }
        await store.sealStage(during, 0, n);
      };
      await Promise.all([
        ...Array.from({ length: 8 }, (_, no) => caller(all[no % all.length]!, no)),
        fanOut(),
      ]);

      expect(wrongInputs).toEqual([]);
      expect([...handed.values()].filter((times) => times !== 1)).toEqual([]);
      expect(handed.size).toBe(total);
      expect(finished).toBe(total);
      for (const jobId of [...before, during]) {
        const [stage] = await first.getStages(jobId);
        expect(stage).toMatchObject({
          status: 'complete',
          created: n,
          succeeded: n - n / 10,
          failed: n / 10,
          released: n,
        });
      }
    });

    it.skipIf(engine.name !== 'server')(
      'releases no index whose task row committed after the release began (an insert it waited for)',
      async () => {
        const [store] = open(1) as [PostgresStore];
        await store.init();
        const { schema } = store;
        await store.createJob({
          id: 'snap',
          name: 'x',
          params: {},
          transport: 'postgres',
          stageCount: 1,
        });
        await store.startStage('snap', 0, 's');
        await store.insertTasks(
          'snap',
          0,
          [0, 1, 2].map((index) => ({ index, input: index })),
        );
        const release = async (fanOut: boolean) =>
          (await store.releaseTasks([{ jobId: 'snap', stage: 0, window: 2, fanOut }])).flatMap(
            (r) => r.tasks.map((t) => t.index),
          );
        expect(await release(true)).toEqual([0, 1]);
        await store.completeTasks(
          [0, 1].map((index) => ({
            jobId: 'snap',
            stage: 0,
            index,
            taskId: taskId('snap', 0, index),
            status: 'succeeded' as const,
          })),
        );
        // A fan-out's insert of task 3 in flight, as insertTasks writes it: the row, then created
        // bumped, the stage row locked until it commits.
        const insert = new pg.Client({ connectionString: DATABASE_URL });
        await insert.connect();
        try {
          await insert.query('BEGIN');
          await insert.query(
            `INSERT INTO "${schema}".tasks (job_id, stage, idx, input) VALUES ('snap', 0, 3, '3')`,
          );
          await insert.query(
            `UPDATE "${schema}".stages SET created = created + 1 WHERE job_id = 'snap' AND idx = 0`,
          );
          // The release's snapshot is taken now, without task 3; the stage row it then locks has
          // created = 4.
          const waiting = release(false);
          // Only the release touches this schema's rows now: it is the session waiting on a lock.
          let blocked = false;
          for (let i = 0; i < 250 && !blocked; i++) {
            const [row] = (
              await insert.query<{ n: number }>(
                `SELECT count(*)::int AS n FROM pg_stat_activity
                  WHERE wait_event_type = 'Lock' AND query LIKE $1`,
                [`%${schema}%`],
              )
            ).rows;
            blocked = row?.n === 1;
            if (!blocked) await sleep(20);
          }
          expect(blocked).toBe(true);
          await insert.query('COMMIT');
          // Task 2 goes now; task 3, which that release could not see, with the next one.
          expect(await waiting).toEqual([2]);
          expect(await release(false)).toEqual([3]);
          expect((await store.getStages('snap'))[0]?.released).toBe(4);
        } finally {
          await insert.end();
        }
      },
    );
  });
}
