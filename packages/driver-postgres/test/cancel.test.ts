/**
 * A cancel made on one Switchyard reaches the handlers another runs on the same database at once,
 * through `LISTEN/NOTIFY` (the second's periodic check is an hour away, so only the notice can do
 * it); its queued task messages settle without running; a deadline aborts with DEADLINE_EXCEEDED.
 */
import {
  createSwitchyard,
  defineJob,
  defineTask,
  type SwitchyardError,
  silentLogger,
  stage,
  type TaskContext,
} from '@switchyard/core';
import { afterEach, describe, expect, it } from 'vitest';
import { postgresStore, postgresTransport } from '../src/index.js';
import { engines } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await condition())) await sleep(5);
}

/**
 * The first handler to start waits for its signal (noting when it aborted) and throws its reason;
 * the second never reads its signal and ends when released; any later one is counted.
 */
function probeJob(name: string, tasks: number) {
  let release!: () => void;
  const released = new Promise<void>((r) => {
    release = r;
  });
  const state = { started: 0, reason: undefined as unknown, abortedAt: 0, secondEnded: false };
  const handler = async (_: unknown, ctx: TaskContext) => {
    const n = state.started++;
    if (n === 0)
      return new Promise((_, reject) =>
        ctx.signal.addEventListener('abort', () => {
          state.abortedAt = performance.now();
          state.reason = ctx.signal.reason;
          reject(ctx.signal.reason);
        }),
      );
    if (n === 1) {
      await released;
      state.secondEnded = true;
    }
    return n;
  };
  const job = defineJob({
    name,
    stages: [
      stage({
        name: 'only',
        task: defineTask({ name: `${name}-task`, retry: { maxAttempts: 1 }, handler }),
        fanOut: () => Array.from({ length: tasks }, (_, i) => i),
      }),
    ],
  });
  return { job, state, release };
}

// The server when it is reachable (two pools, a LISTEN connection), else PGlite (in process).
for (const engine of (await engines()).slice(0, 1)) {
  describe(`cancel across instances (${engine.name})`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    /** Two Switchyards on one schema: `worker` runs work(), `operator` only submits and cancels. */
    function pair(job: ReturnType<typeof probeJob>['job']) {
      const schema = engine.schema();
      const make = () =>
        createSwitchyard({
          jobs: [job],
          store: postgresStore({ ...engine.connection(), schema, poolSize: 3 }),
          transports: [postgresTransport({ ...engine.connection(), schema, poolSize: 3 })],
          logger: silentLogger,
          reconcile: { intervalMs: 0 },
          scheduler: { intervalMs: 0 },
          // Only the store's notice can reach the worker's handlers within the test.
          cancelCheckIntervalMs: 3_600_000,
        });
      const worker = make();
      const operator = make();
      const stop = new AbortController();
      let working: Promise<void> | undefined;
      cleanups.push(async () => {
        stop.abort();
        await working;
        await worker.close();
        await operator.close();
      });
      const start = async () => {
        // Migrated before the worker listens, so the two do not race to create the schema.
        await operator.ready();
        working = worker.work({ concurrency: 2, signal: stop.signal, waitMs: 100 });
      };
      const depth = async () =>
        (
          await engine.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM "${schema}".queue_messages`,
          )
        )[0]!.n;
      const deadLetters = async () =>
        (
          await engine.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM "${schema}".queue_dead_letters`,
          )
        )[0]!.n;
      return { worker, operator, start, depth, deadLetters };
    }

    it('aborts a handler on the other instance at once; queued tasks settle unrun', {
      timeout: 60_000,
    }, async () => {
      const { job, state, release } = probeJob('pg-cancel', 10);
      const { worker, operator, start, depth, deadLetters } = pair(job);
      await start();
      const { jobId } = await operator.submit('pg-cancel', undefined);
      await until(() => state.started === 2);

      const cancelledAt = performance.now();
      expect(await operator.cancel(jobId)).toBe(true);
      await until(() => state.reason !== undefined);
      // Reported by the test run; asserting a time would fail on a loaded machine.
      const latencyMs = state.abortedAt - cancelledAt;
      expect(latencyMs).toBeGreaterThanOrEqual(0);
      expect(state.reason).toMatchObject({
        code: 'JOB_CANCELLED',
        message: `job ${jobId} was cancelled`,
      });
      expect((await operator.waitFor(jobId, { pollIntervalMs: 20 })).status).toBe('cancelled');

      release();
      await until(async () => state.secondEnded && (await depth()) === 0);
      expect(state.started).toBe(2);
      expect(await deadLetters()).toBe(0);
      const { tasks } = await worker.store.listTasks(jobId, { limit: 100 });
      expect(tasks.map((t) => t.status)).toEqual(Array(10).fill('cancelled'));
    });

    it('aborts with DEADLINE_EXCEEDED when the deadline pass on the other instance expires the job', {
      timeout: 60_000,
    }, async () => {
      const { job, state } = probeJob('pg-deadline', 1);
      const { operator, start } = pair(job);
      await start();
      const { jobId } = await operator.submit('pg-deadline', undefined, { deadlineMs: 100 });
      await until(() => state.started === 1);
      await until(async () => (await operator.runSchedules()).expired === 1);
      await until(() => state.reason !== undefined);
      const reason = state.reason as SwitchyardError;
      expect(reason.code).toBe('DEADLINE_EXCEEDED');
      expect(reason.message).toMatch(new RegExp(`^job ${jobId} did not finish by its deadline `));
      expect(await operator.getJob(jobId)).toMatchObject({
        status: 'cancelled',
        error: { code: 'DEADLINE_EXCEEDED' },
      });
    });
  });
}
