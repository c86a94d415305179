import {
  createSwitchyard,
  defineJob,
  defineTask,
  silentLogger,
  stage,
  type TaskContext,
} from '@switchyard/core';
import type { Store } from '@switchyard/core/driver';
import { scratchStores } from '@switchyard/driver-postgres/testing';
import { helloWorld } from '@switchyard/example-jobs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { storageQueueTransport } from '../src/index.js';
import { connectionString, deleteQueues, uniqueName } from './helpers.js';

const prefix = uniqueName('e');

const stores = scratchStores('sq_engine');

describe.skipIf(!connectionString)('engine on storage queues (Azurite)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });
  afterAll(async () => {
    await deleteQueues(prefix);
    await stores.dropAll();
  });

  function setup(store: Store) {
    const base = uniqueName(prefix);
    const transport = storageQueueTransport({
      connectionString,
      queues: { stage: `${base}-s`, task: `${base}-t` },
    });
    const yard = createSwitchyard({
      jobs: [helloWorld],
      store,
      transports: [transport],
      logger: silentLogger,
      reconcile: { intervalMs: 0 },
    });
    const controller = new AbortController();
    const loops: Promise<void>[] = [];
    const start = (workers: number, visibilityTimeoutMs: number) => {
      for (let i = 0; i < workers; i++) {
        loops.push(
          yard.work({
            concurrency: 64,
            signal: controller.signal,
            visibilityTimeoutMs,
            waitMs: 200,
          }),
        );
      }
    };
    cleanups.push(async () => {
      controller.abort();
      await Promise.all(loops);
      await yard.close();
    });
    return { yard, transport, start };
  }

  it('runs hello_world at n = 1,000 end to end', { timeout: 120_000 }, async () => {
    const { yard, start } = setup(stores.create());
    start(2, 30_000);
    const { jobId } = await yard.submit('hello_world', { n: 1000, workMs: 0 });
    const view = await yard.waitFor(jobId, { pollIntervalMs: 200 });
    expect(view.status).toBe('succeeded');
    expect(view.result).toEqual({ greeted: 1000, replied: 1000 });
    expect(view.stages.map((s) => [s.total, s.succeeded, s.failed])).toEqual([
      [1000, 1000, 0],
      [1000, 1000, 0],
    ]);
  });

  it('a task whose worker died after receiving it comes back after the visibility timeout and completes once', {
    timeout: 60_000,
  }, async () => {
    const store = stores.create();
    const { yard, transport, start } = setup(store);
    const { jobId } = await yard.submit('hello_world', { n: 5, workMs: 0 });
    // Fan out by hand (as a serverless host would), so the task messages wait in the queue.
    const [stageMsg] = await transport.receive('stage', { maxMessages: 1, waitMs: 5000 });
    const outcome = await yard.handle(stageMsg!.body, { deliveryCount: 1 });
    expect(outcome.action).toBe('complete');
    await transport.settle([{ message: stageMsg!, action: 'complete' }]);
    // The "killed" worker: receives one task message for 2 s and never settles it.
    const [orphan] = await transport.receive('task', {
      maxMessages: 1,
      visibilityTimeoutMs: 2000,
      waitMs: 5000,
    });
    expect(orphan).toBeDefined();
    const orphanTaskId = (JSON.parse(orphan!.body) as { taskId: string }).taskId;
    const orphanedAt = Date.now();
    start(1, 30_000);
    const view = await yard.waitFor(jobId, { pollIntervalMs: 100 });
    expect(view.status).toBe('succeeded');
    expect(Date.now() - orphanedAt).toBeGreaterThanOrEqual(1500);
    expect(view.result).toEqual({ greeted: 5, replied: 5 });
    const { tasks } = await store.listTasks(jobId, { stage: 0, limit: 100 });
    const stage1 =
      tasks.length > 0 ? tasks : (await store.listTasks(jobId, { stage: 1, limit: 100 })).tasks;
    expect(stage1).toHaveLength(5);
    for (const task of stage1) {
      expect(task.status).toBe('succeeded');
      // The orphan's first delivery counts as an attempt: a worker that received it may have
      // started it (first deliveries are admitted, nothing written until the outcome).
      expect(task.attempts).toBe(task.id === orphanTaskId ? 2 : 1);
    }
    // The dead worker's late settlement is ignored (its pop receipt is stale).
    await expect(
      transport.settle([{ message: orphan!, action: 'complete' }]),
    ).resolves.toBeUndefined();
  });

  it('a serverless host’s handler sees a cancel made elsewhere within the check interval; the other tasks settle unrun', {
    timeout: 60_000,
  }, async () => {
    let started = 0;
    let reason: unknown;
    let abortedAt = 0;
    const job = defineJob({
      name: 'cancel-probe',
      stages: [
        stage({
          name: 'only',
          task: defineTask({
            name: 'cancel-probe-task',
            retry: { maxAttempts: 1 },
            handler: (_: unknown, ctx: TaskContext) => {
              started++;
              return new Promise((_, reject) =>
                ctx.signal.addEventListener('abort', () => {
                  abortedAt = performance.now();
                  reason = ctx.signal.reason;
                  reject(ctx.signal.reason);
                }),
              );
            },
          }),
          fanOut: () => [0, 1, 2, 3, 4],
        }),
      ],
    });
    const store = stores.create();
    const base = uniqueName(prefix);
    const transport = storageQueueTransport({
      connectionString,
      queues: { stage: `${base}-s`, task: `${base}-t` },
    });
    // A Functions host: it only handle()s what its triggers deliver. With no work() loop it holds
    // no subscription to the store's cancel notices: its check, every 200 ms, finds the cancel.
    const host = createSwitchyard({
      jobs: [job],
      store,
      transports: [transport],
      logger: silentLogger,
      cancelCheckIntervalMs: 200,
    });
    cleanups.push(() => host.close());
    const { jobId } = await host.submit('cancel-probe', undefined);
    const [stageMsg] = await transport.receive('stage', { maxMessages: 1, waitMs: 5000 });
    expect(await host.handle(stageMsg!.body)).toEqual({ action: 'complete' });
    await transport.settle([{ message: stageMsg!, action: 'complete' }]);

    const [first] = await transport.receive('task', {
      maxMessages: 1,
      visibilityTimeoutMs: 30_000,
      waitMs: 5000,
    });
    const handling = host.handle(first!.body, { deliveryCount: first!.deliveryCount });
    while (started === 0) await new Promise((r) => setTimeout(r, 5));
    // Another instance cancels (its cancel is this store call).
    const cancelledAt = performance.now();
    expect(await store.cancelJob(jobId)).toBe(true);
    expect(await handling).toEqual({ action: 'complete' });
    expect(reason).toMatchObject({ code: 'JOB_CANCELLED' });
    // Reported by the test run; asserting a time would fail on a loaded machine.
    expect(abortedAt - cancelledAt).toBeGreaterThanOrEqual(0);
    await transport.settle([{ message: first!, action: 'complete' }]);

    // The job's queued task messages settle without running their handlers.
    const rest: Awaited<ReturnType<typeof transport.receive>> = [];
    while (rest.length < 4)
      rest.push(...(await transport.receive('task', { maxMessages: 4, waitMs: 2000 })));
    for (const message of rest) {
      expect(await host.handle(message.body, { deliveryCount: message.deliveryCount })).toEqual({
        action: 'complete',
      });
    }
    await transport.settle(rest.map((message) => ({ message, action: 'complete' as const })));
    expect(started).toBe(1);
    expect(await transport.receive('task', { maxMessages: 10, waitMs: 0 })).toEqual([]);
    expect((await host.getJob(jobId))?.status).toBe('cancelled');
  });
});
