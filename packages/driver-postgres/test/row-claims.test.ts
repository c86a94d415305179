/**
 * Task-row claims through a Switchyard: the default Postgres configuration (store and transport on
 * one database and schema, server or PGlite) runs its tasks from their rows, with no task message;
 * every mixed setup — another schema, another database, another store, `claimTaskRows: false` —
 * still sends task messages; purging a job removes its offers and leases.
 */
import {
  createSwitchyard,
  defineJob,
  defineTask,
  memoryStore,
  type NamedJob,
  type SwitchyardOptions,
  silentLogger,
  stage,
} from '@switchyard/core';
import type { Store } from '@switchyard/core/driver';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { type PostgresTransport, postgresStore, postgresTransport } from '../src/index.js';
import { DATABASE_URL, type Engine, engines, randomSchema } from './helpers.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const runs = new Map<string, number>();
const double = defineTask({
  name: 'double',
  handler: (input: { i: number }, ctx) => {
    runs.set(ctx.taskId, (runs.get(ctx.taskId) ?? 0) + 1);
    return input.i * 2;
  },
});
const job = defineJob({
  name: 'doubles',
  stages: [
    stage({
      name: 'many',
      task: double,
      fanOut: () => Array.from({ length: 300 }, (_, i) => ({ i })),
    }),
    stage({
      name: 'again',
      task: double,
      async *fanOut(_params: unknown, ctx) {
        for await (const r of ctx.results<number>('many')) yield { i: r.result };
      },
    }),
  ],
});

/**
 * A Switchyard of `setup` working with `concurrency` slots until the test ends; no reconciler, so a
 * job finishes by its own messages and claims alone.
 */
function working<const Jobs extends readonly NamedJob[]>(
  setup: Pick<SwitchyardOptions<Jobs>, 'jobs' | 'store' | 'transports'>,
  concurrency: number,
) {
  const yard = createSwitchyard({ ...setup, logger: silentLogger, reconcile: { intervalMs: 0 } });
  const controller = new AbortController();
  const work = yard.work({ concurrency, signal: controller.signal, waitMs: 100 });
  closers.push(async () => {
    controller.abort();
    await work;
    await yard.close();
  });
  return yard;
}

/** Runs the job to its end on `store` and `transport`; returns its view and the transport's statements. */
async function runJob(store: Store, transport: PostgresTransport) {
  runs.clear();
  const yard = working({ jobs: [job], store, transports: [transport] }, 32);
  const { jobId } = await yard.submit('doubles', undefined);
  const view = await yard.waitFor(jobId, {
    signal: AbortSignal.timeout(60_000),
    pollIntervalMs: 50,
  });
  expect(view.status).toBe('succeeded');
  expect(view.stages.map((s) => s.succeeded)).toEqual([300, 300]);
  expect(runs.size).toBe(600);
  expect([...runs.values()].every((n) => n === 1)).toBe(true);
  return { yard, jobId, operations: transport.usage().operations };
}

const transportOn = (engine: Engine, schema: string, more: { claimTaskRows?: boolean } = {}) =>
  postgresTransport({ ...engine.connection(), schema, pollIntervalMs: 50, ...more });

for (const engine of await engines()) {
  describe(`task-row claims (${engine.name})`, () => {
    it('the default configuration offers and claims the task rows: no task message is sent', async () => {
      const schema = engine.schema();
      const { operations } = await runJob(
        postgresStore({ ...engine.connection(), schema }),
        transportOn(engine, schema),
      );
      expect(operations.offer).toBeGreaterThanOrEqual(2);
      expect(operations.claim).toBeGreaterThan(0);
      // Only the two stage messages were sent: the job has no finalize, so no finish message.
      expect(operations.send).toBe(2);
      // Every range was settled: its lease is gone (the last settlement may trail the job's end).
      const leases = async () =>
        (
          await engine.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM "${schema}".task_leases`,
          )
        )[0]!.n;
      const until = Date.now() + 5000;
      while ((await leases()) > 0 && Date.now() < until)
        await new Promise((r) => setTimeout(r, 50));
      expect(await leases()).toBe(0);
    });

    it('a store in another schema, another store, or claimTaskRows: false: task messages', async () => {
      const setups: [string, () => { store: Store; transport: PostgresTransport }][] = [
        [
          'another schema',
          () => ({
            store: postgresStore({ ...engine.connection(), schema: engine.schema() }),
            transport: transportOn(engine, engine.schema()),
          }),
        ],
        [
          'the memory store',
          () => ({ store: memoryStore(), transport: transportOn(engine, engine.schema()) }),
        ],
        [
          'claimTaskRows: false',
          () => {
            const schema = engine.schema();
            return {
              store: postgresStore({ ...engine.connection(), schema }),
              transport: transportOn(engine, schema, { claimTaskRows: false }),
            };
          },
        ],
      ];
      for (const [setup, make] of setups) {
        const { store, transport } = make();
        const { operations } = await runJob(store, transport);
        expect(operations.offer, setup).toBeUndefined();
        expect(operations.claim, setup).toBeUndefined();
        expect(operations.send, setup).toBeGreaterThan(2);
      }
    });

    it('retrying a job fans its later stages out afresh, from fresh offers', async () => {
      const schema = engine.schema();
      const failing = { on: true };
      const flaky = defineTask({
        name: 'flaky',
        retry: { maxAttempts: 1 },
        handler: (input: { i: number }) => {
          if (input.i === 3 && failing.on) throw new Error('not yet');
          return input.i;
        },
      });
      const twoStages = defineJob({
        name: 'tolerant',
        stages: [
          stage({
            name: 'first',
            task: flaky,
            tolerateFailures: 1,
            fanOut: () => Array.from({ length: 20 }, (_, i) => ({ i })),
          }),
          stage({
            name: 'second',
            task: flaky,
            async *fanOut(_params: unknown, ctx) {
              for await (const r of ctx.results<number>('first')) yield { i: r.result + 100 };
            },
          }),
        ],
      });
      // No reconciler (`working`): the re-fanned stage must run from its own offer.
      const transport = transportOn(engine, schema);
      const yard = working(
        {
          jobs: [twoStages],
          store: postgresStore({ ...engine.connection(), schema }),
          transports: [transport],
        },
        8,
      );
      const wait = (jobId: string) =>
        yard.waitFor(jobId, { signal: AbortSignal.timeout(30_000), pollIntervalMs: 50 });
      const { jobId } = await yard.submit('tolerant', undefined);
      const first = await wait(jobId);
      expect(first.stages.map((s) => [s.succeeded, s.failed])).toEqual([
        [19, 1],
        [19, 0],
      ]);
      failing.on = false;
      const sent = transport.usage().operations.send;
      await yard.retry(jobId);
      // The re-opened task's row was made due again: no task message.
      expect(transport.usage().operations.retryRows).toBe(1);
      expect(transport.usage().operations.send).toBe(sent);
      const again = await wait(jobId);
      expect(again.status).toBe('succeeded');
      expect(again.stages.map((s) => [s.succeeded, s.failed])).toEqual([
        [20, 0],
        [20, 0],
      ]);
    });

    it('a failed attempt makes its task row due again after the backoff, a poisoned one is dead-lettered: no task message, every attempt counted', async () => {
      const schema = engine.schema();
      const attempts = new Map<number, number[]>();
      const healed = { now: false };
      const flaky = defineTask({
        name: 'flaky',
        retry: { maxAttempts: 3, initialDelayMs: 200, factor: 1, jitter: 0 },
        handler: (input: { i: number }, ctx) => {
          attempts.set(input.i, [...(attempts.get(input.i) ?? []), ctx.attempt]);
          // Every fifth task fails twice; task 7 fails every time (poisoned after its third)
          // until healed.
          if ((input.i % 5 === 0 && ctx.attempt < 3) || (input.i === 7 && !healed.now))
            throw new Error(`attempt ${ctx.attempt}`);
          return input.i;
        },
      });
      const retrying = defineJob({
        name: 'retrying',
        stages: [
          stage({
            name: 'only',
            task: flaky,
            tolerateFailures: 1,
            fanOut: () => Array.from({ length: 40 }, (_, i) => ({ i })),
          }),
        ],
      });
      const store = postgresStore({ ...engine.connection(), schema });
      const transport = transportOn(engine, schema);
      const yard = working({ jobs: [retrying], store, transports: [transport] }, 8);
      const submitted = Date.now();
      const { jobId } = await yard.submit('retrying', undefined);
      const view = await yard.waitFor(jobId, {
        signal: AbortSignal.timeout(30_000),
        pollIntervalMs: 50,
      });
      expect(view.stages[0]).toMatchObject({ succeeded: 39, failed: 1 });
      // Two backoffs of 200 ms at least: the rows were not due before.
      expect(Date.now() - submitted).toBeGreaterThanOrEqual(400);
      for (const [i, seen] of attempts)
        expect(seen, `task ${i}`).toEqual(i % 5 === 0 || i === 7 ? [1, 2, 3] : [1]);
      const { tasks } = await yard.listTasks(jobId, { stage: 0, limit: 100 });
      expect(
        tasks.filter((t) => t.attempts > 1).map((t) => [t.index, t.attempts, t.status]),
      ).toEqual(
        [0, 5, 7, 10, 15, 20, 25, 30, 35].map((i) => [i, 3, i === 7 ? 'failed' : 'succeeded']),
      );
      const { operations } = transport.usage();
      // Retries went to the rows and the poisoned task straight to the dead letters: the only
      // message was the stage's (the job has no finalize, so no finish message).
      expect(operations.retryRows).toBeGreaterThan(0);
      expect(operations.send).toBe(1);
      // The poisoned task is dead-lettered where dead letters are listed (its letter may trail
      // the job's end: the failure is counted first).
      const until = Date.now() + 5000;
      let letters = await transport.listDeadLetters('task');
      while (letters.length === 0 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 50));
        letters = await transport.listDeadLetters('task');
      }
      expect(letters.map((l) => l.reason)).toEqual(['MaxAttemptsExceeded']);
      // Replaying the letter re-opens the task and runs it again.
      healed.now = true;
      expect(await yard.replayDeadLetters(transport.name, 'task')).toBe(1);
      const replayed = await yard.waitFor(jobId, {
        signal: AbortSignal.timeout(30_000),
        pollIntervalMs: 50,
      });
      expect(replayed.stages[0]).toMatchObject({ succeeded: 40, failed: 0 });
      expect(attempts.get(7)?.length).toBe(4);
    });

    it('purging a finished job removes its offers and leases', async () => {
      const schema = engine.schema();
      const { yard, jobId } = await runJob(
        postgresStore({ ...engine.connection(), schema }),
        transportOn(engine, schema),
      );
      const count = async (table: string) =>
        (
          await engine.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM "${schema}".${table} WHERE job_id = $1`,
            [jobId],
          )
        )[0]!.n;
      expect(await count('task_offers')).toBe(2);
      await new Promise((r) => setTimeout(r, 5));
      const purged = await yard.purge({ status: 'succeeded', finishedBefore: new Date() });
      expect(purged.jobs).toBe(1);
      expect(await count('task_offers')).toBe(0);
      expect(await count('task_leases')).toBe(0);
    });
  });
}

if ((await engines()).some((e) => e.name === 'server')) {
  describe('task-row claims across two databases (server)', () => {
    it('a store in another database with the same schema name: task messages', async () => {
      const schema = randomSchema();
      const other = DATABASE_URL.replace(/\/[^/?]+(\?|$)/, '/postgres$1');
      const store = postgresStore({ connectionString: DATABASE_URL, schema });
      const transport = postgresTransport({ connectionString: other, schema, pollIntervalMs: 50 });
      closers.push(async () => {
        for (const url of [DATABASE_URL, other]) {
          const admin = new pg.Client({ connectionString: url });
          await admin.connect();
          await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          await admin.end();
        }
      });
      const { operations } = await runJob(store, transport);
      expect(operations.offer).toBeUndefined();
      expect(operations.send).toBeGreaterThan(2);
    });
  });
}
