/**
 * A cancel reaching running handlers (memory drivers): `ctx.signal` aborts with `JOB_CANCELLED`
 * (or `DEADLINE_EXCEEDED`), the aborted attempt settles without a retry or a dead letter, and the
 * job's queued tasks never start.
 */
import {
  createSwitchyard,
  defineJob,
  defineTask,
  memoryStore,
  memoryTransport,
  type SwitchyardError,
  silentLogger,
  stage,
  type TaskContext,
} from '@switchyard/core';
import type { Transport } from '@switchyard/core/driver';
import { afterEach, describe, expect, it } from 'vitest';
import { startYards } from './harness.js';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await condition())) await sleep(5);
}

/**
 * The first handler to start waits for its signal and throws its reason; the second never reads
 * its signal and ends when `release()` is called; any later one is counted (none should start).
 */
function probe() {
  let release!: () => void;
  const released = new Promise<void>((r) => {
    release = r;
  });
  const state = {
    started: 0,
    reason: undefined as unknown,
    abortedAt: 0,
    secondEnded: false,
    release,
  };
  const handler = async (_: unknown, ctx: TaskContext) => {
    const n = state.started++;
    if (n === 0)
      return new Promise((_, reject) =>
        ctx.signal.addEventListener('abort', () => {
          state.reason = ctx.signal.reason;
          state.abortedAt = performance.now();
          reject(ctx.signal.reason);
        }),
      );
    if (n === 1) {
      await released;
      state.secondEnded = true;
      return 'finished anyway';
    }
    return 'should not run';
  };
  return { state, handler };
}

function probeJob(name: string, handler: (input: unknown, ctx: TaskContext) => unknown, n = 10) {
  return defineJob({
    name,
    stages: [
      stage({
        name: 'only',
        task: defineTask({ name: `${name}-task`, retry: { maxAttempts: 1 }, handler }),
        fanOut: () => Array.from({ length: n }, (_, i) => i),
      }),
    ],
  });
}

type Depth = Transport & { depth(queue: 'stage' | 'task'): number };

describe('cancel reaches running handlers (memory)', () => {
  it('aborts a handler awaiting its signal with JOB_CANCELLED; the rest settle unrun', async () => {
    const { state, handler } = probe();
    const transport = memoryTransport({ visibilityTimeoutMs: 5000 }) as Depth;
    const h = startYards([probeJob('cancel-probe', handler)], {
      transports: [transport],
      concurrency: 2,
    });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('cancel-probe', undefined);
    await until(() => state.started === 2);

    expect(await h.yard.cancel(jobId)).toBe(true);
    await until(() => state.reason !== undefined);
    expect(state.reason).toMatchObject({
      name: 'SwitchyardError',
      code: 'JOB_CANCELLED',
      message: `job ${jobId} was cancelled`,
    });
    expect((await h.yard.waitFor(jobId)).status).toBe('cancelled');

    // The handler that never read its signal finishes; its result does not apply.
    state.release();
    await until(() => state.secondEnded && transport.depth('task') === 0);
    expect(state.started).toBe(2);
    const { tasks } = await h.store.listTasks(jobId, { limit: 100 });
    expect(tasks.map((t) => t.status)).toEqual(Array(10).fill('cancelled'));
    expect(tasks.filter((t) => t.error !== undefined)).toEqual([]);
    expect(await transport.listDeadLetters!('task')).toEqual([]);
    const view = await h.yard.getJob(jobId);
    expect(view?.status).toBe('cancelled');
    // Two handlers were running and eight waiting when the cancel ended all ten.
    expect(view?.stages[0]).toMatchObject({
      total: 10,
      pending: 0,
      running: 0,
      succeeded: 0,
      failed: 0,
      cancelled: 10,
    });
  });

  it('keeps a pack’s tasks waiting for a slot from starting once their job is cancelled', async () => {
    const { state, handler } = probe();
    const transport = memoryTransport({ visibilityTimeoutMs: 5000 }) as Depth;
    const h = startYards([probeJob('cancel-pack', handler, 8)], {
      transports: [transport],
      concurrency: 2,
      batching: { packTasks: 8 },
    });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('cancel-pack', undefined);
    await until(() => state.started === 2);
    await h.yard.cancel(jobId);
    await until(() => state.reason !== undefined);
    state.release();
    await until(() => state.secondEnded && transport.depth('task') === 0);
    expect(state.started).toBe(2);
    expect(await transport.listDeadLetters!('task')).toEqual([]);
  });

  it('reaches a handler on another instance through the store’s notice, and cancelJobs too', async () => {
    const { state, handler } = probe();
    const h = startYards([probeJob('cancel-other', handler)], { workers: 2, concurrency: 1 });
    cleanup = h.stop;
    const { jobId } = await h.yards[0]!.submit('cancel-other', undefined);
    await until(() => state.started === 2);
    // An instance that runs no worker at all cancels by filter.
    const operator = createSwitchyard({
      jobs: [probeJob('cancel-other', handler)],
      store: h.store,
      transports: [memoryTransport()],
      logger: silentLogger,
    });
    expect(await operator.cancelJobs({ name: 'cancel-other' })).toEqual({ cancelled: 1 });
    await until(() => state.reason !== undefined);
    expect(state.reason).toMatchObject({ code: 'JOB_CANCELLED' });
    state.release();
    expect((await h.yard.waitFor(jobId)).status).toBe('cancelled');
  });

  it('aborts a job’s handlers with DEADLINE_EXCEEDED when its deadline cancels it', async () => {
    const { state, handler } = probe();
    const h = startYards([probeJob('deadline-probe', handler, 1)], { concurrency: 2 });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('deadline-probe', undefined, { deadlineMs: 100 });
    await until(() => state.started === 1);
    // The scheduler pass `work()` runs every `scheduler.intervalMs` expires the job.
    await until(async () => (await h.yard.runSchedules()).expired === 1);
    await until(() => state.reason !== undefined);
    const reason = state.reason as SwitchyardError;
    expect(reason.code).toBe('DEADLINE_EXCEEDED');
    expect(reason.message).toMatch(new RegExp(`^job ${jobId} did not finish by its deadline `));
    const view = await h.yard.waitFor(jobId);
    expect(view).toMatchObject({ status: 'cancelled', error: { code: 'DEADLINE_EXCEEDED' } });
  });

  it('reaches a handler that handle() runs within the check interval', async () => {
    const { state, handler } = probe();
    const job = probeJob('cancel-handle', handler, 1);
    const store = memoryStore();
    const transport = memoryTransport();
    // A serverless host: no work(), so no subscription to the store's notices; only the check.
    const host = createSwitchyard({
      jobs: [job],
      store,
      transports: [transport],
      logger: silentLogger,
      cancelCheckIntervalMs: 50,
    });
    const operator = createSwitchyard({
      jobs: [job],
      store,
      transports: [transport],
      logger: silentLogger,
    });
    cleanup = async () => {
      await host.close();
    };
    const { jobId } = await operator.submit('cancel-handle', undefined);
    const [stageMessage] = await transport.receive('stage', { maxMessages: 1 });
    expect(await host.handle(stageMessage!.body)).toEqual({ action: 'complete' });
    const [taskMessage] = await transport.receive('task', { maxMessages: 1 });
    const settled = host.handle(taskMessage!.body);
    await until(() => state.started === 1);
    await operator.cancel(jobId);
    expect(await settled).toEqual({ action: 'complete' });
    expect(state.reason).toMatchObject({ code: 'JOB_CANCELLED' });
    expect((await store.getTask(`${jobId}.0.0`))?.status).toBe('cancelled');
  });
});
