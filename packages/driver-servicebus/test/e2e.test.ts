import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createSwitchyard,
  defineJob,
  defineTask,
  memoryStore,
  silentLogger,
  stage,
} from '@switchyard/core';
import type { ReceivedMessage, Settlement, Transport } from '@switchyard/core/driver';
import { scratchStores } from '@switchyard/driver-postgres/testing';
import { helloWorld } from '@switchyard/example-jobs';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { serviceBusTransport } from '../src/index.js';
import { freshQueues, tryStartEmulator } from './emulator.js';

const emulator = await tryStartEmulator();
afterAll(async () => {
  await emulator?.close();
  await stores.dropAll();
});

const stores = scratchStores('sb_e2e');

describe.skipIf(!emulator)('engine end to end on Service Bus (emulator)', () => {
  it('runs hello_world at n = 1,000', { timeout: 120_000 }, async () => {
    const queues = freshQueues(emulator!, { lockDurationMs: 30_000 });
    const store = stores.create();
    const transport = serviceBusTransport({ connectionString: emulator!.connectionString, queues });
    const yard = createSwitchyard({
      jobs: [helloWorld],
      store,
      transports: [transport],
      logger: silentLogger,
    });
    const stop = new AbortController();
    const working = yard.work({
      concurrency: 200,
      signal: stop.signal,
      waitMs: 500,
      visibilityTimeoutMs: 30_000,
    });
    try {
      const started = Date.now();
      const { jobId } = await yard.submit(
        'hello_world',
        { n: 1000, workMs: 0 },
        { idempotencyKey: randomUUID() },
      );
      const job = await yard.waitFor(jobId, { pollIntervalMs: 100 });
      console.info(
        `[driver-servicebus e2e] hello_world n=1000 on ${stores.kind} store: ${job.status} in ${Date.now() - started} ms`,
      );
      expect(job.status).toBe('succeeded');
      expect(job.result).toEqual({ greeted: 1000, replied: 1000 });
      expect(emulator!.queueStats(queues.task)).toMatchObject({ active: 0, deadLettered: 0 });
    } finally {
      stop.abort();
      await working;
      await yard.close();
    }
  });

  it('runs hello_world at each priority with priorityLanes on', { timeout: 60_000 }, async () => {
    const queues = freshQueues(emulator!, { lockDurationMs: 30_000, priorityLanes: true });
    const transport = serviceBusTransport({
      connectionString: emulator!.connectionString,
      queues,
      priorityLanes: true,
    });
    const yard = createSwitchyard({
      jobs: [helloWorld],
      store: memoryStore(),
      transports: [transport],
      logger: silentLogger,
    });
    const stop = new AbortController();
    const working = yard.work({ concurrency: 50, signal: stop.signal, waitMs: 500 });
    try {
      // One job per lane: each finishes only if its lane's queue is read.
      const lanes = ['high', 'normal', 'low'] as const;
      const submitted = await Promise.all(
        lanes.map((priority, i) =>
          yard.submit('hello_world', { n: 200 + i, workMs: 0 }, { priority }),
        ),
      );
      for (const [i, { jobId }] of submitted.entries()) {
        const job = await yard.waitFor(jobId, { pollIntervalMs: 100 });
        expect(job).toMatchObject({ status: 'succeeded', priority: lanes[i] });
        expect(job.result).toEqual({ greeted: 200 + i, replied: 200 + i });
      }
      for (const name of [queues.task, `${queues.task}-high`, `${queues.task}-low`])
        expect(emulator!.queueStats(name)).toMatchObject({ active: 0, deadLettered: 0 });
    } finally {
      stop.abort();
      await working;
      await yard.close();
    }
  });

  it('dead-letters a malformed message with a clear reason', { timeout: 30_000 }, async () => {
    const queues = freshQueues(emulator!);
    const transport = serviceBusTransport({ connectionString: emulator!.connectionString, queues });
    const yard = createSwitchyard({
      jobs: [helloWorld],
      store: memoryStore(),
      transports: [transport],
      logger: silentLogger,
    });
    const stop = new AbortController();
    const working = yard.work({ concurrency: 4, signal: stop.signal, waitMs: 200 });
    try {
      await transport.send('task', [{ body: 'this is not an envelope', messageId: 'garbage' }]);
      let dead: Awaited<ReturnType<typeof transport.listDeadLetters>> = [];
      for (let i = 0; i < 50 && dead.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        dead = await transport.listDeadLetters('task');
      }
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({
        id: 'garbage',
        body: 'this is not an envelope',
        reason: 'MalformedMessage',
      });
      expect(dead[0]?.description).toBeTruthy();
    } finally {
      stop.abort();
      await working;
      await yard.close();
    }
  });

  it('a worker killed mid-task: its message comes back after the lock expires and the task completes once', {
    timeout: 60_000,
  }, async () => {
    const queues = freshQueues(emulator!, { lockDurationMs: 1000 });
    const store = memoryStore();
    let runs = 0;
    let hang: (() => void) | undefined;
    const slow = defineTask({
      name: 'slow',
      input: z.object({ i: z.number() }),
      handler: async ({ i }, ctx) => {
        runs++;
        if (runs === 1) {
          // The first worker "dies" here: it never returns, never settles, never renews.
          await new Promise<void>((resolve) => {
            hang = resolve;
            ctx.signal.addEventListener('abort', () => resolve());
          });
          throw new Error('worker was killed');
        }
        return i * 2;
      },
    });
    const job = defineJob({
      name: 'one_slow_task',
      params: z.object({}),
      stages: [
        stage({
          name: 'only',
          task: slow,
          *fanOut() {
            yield { i: 21 };
          },
        }),
      ],
      finalize: ({ stages }) => ({ succeeded: stages[0]?.succeeded ?? 0 }),
    });
    const options = { connectionString: emulator!.connectionString, queues };
    const deadTransport = killable(serviceBusTransport(options));
    const liveTransport = serviceBusTransport(options);
    const workerA = createSwitchyard({
      jobs: [job],
      store,
      transports: [deadTransport.transport],
      logger: silentLogger,
    });
    const workerB = createSwitchyard({
      jobs: [job],
      store,
      transports: [liveTransport],
      logger: silentLogger,
    });
    const stopA = new AbortController();
    const stopB = new AbortController();
    const workingA = workerA.work({
      concurrency: 4,
      signal: stopA.signal,
      waitMs: 200,
      visibilityTimeoutMs: 1000,
    });
    let workingB: Promise<void> | undefined;
    try {
      const { jobId } = await workerA.submit('one_slow_task', {}, { idempotencyKey: randomUUID() });
      for (let i = 0; i < 100 && runs === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(runs).toBe(1);
      deadTransport.kill(); // from now on worker A receives nothing, renews nothing, settles nothing
      workingB = workerB.work({
        concurrency: 4,
        signal: stopB.signal,
        waitMs: 200,
        visibilityTimeoutMs: 1000,
      });
      const view = await workerB.waitFor(jobId, { pollIntervalMs: 100 });
      expect(view.status).toBe('succeeded');
      expect(view.result).toEqual({ succeeded: 1 });
      expect(runs).toBe(2);
      // The dead worker's late failure cannot undo the recorded result.
      hang?.();
      await new Promise((r) => setTimeout(r, 300));
      expect((await workerB.getJob(jobId))?.stages[0]).toMatchObject({ succeeded: 1, failed: 0 });
    } finally {
      stopA.abort();
      stopB.abort();
      hang?.();
      await workingB;
      await workerB.close();
      // The "dead" worker's loop has been seen (rarely) not to finish draining with core's current
      // work loop; don't let that hang the test — close its transport (the connection) directly.
      const drained = await Promise.race([
        workingA.then(() => true),
        sleep(3000).then(() => false),
      ]);
      if (drained) await workerA.close();
      else await deadTransport.transport.close();
    }
  });

  it('cancel: a running handler’s signal aborts with JOB_CANCELLED; queued task messages settle unrun', {
    timeout: 60_000,
  }, async () => {
    let started = 0;
    let reason: unknown;
    const job = defineJob({
      name: 'cancel_probe',
      stages: [
        stage({
          name: 'only',
          task: defineTask({
            name: 'cancel_probe_task',
            retry: { maxAttempts: 1 },
            // The first handler waits for its signal; none after it should start.
            handler: (_: unknown, ctx) => {
              if (started++ > 0) return 'should not run';
              return new Promise((_, reject) =>
                ctx.signal.addEventListener('abort', () => {
                  reason = ctx.signal.reason;
                  reject(ctx.signal.reason);
                }),
              );
            },
          }),
          fanOut: () => Array.from({ length: 8 }, (_, i) => i),
        }),
      ],
    });
    const queues = freshQueues(emulator!, { lockDurationMs: 30_000 });
    const transport = serviceBusTransport({ connectionString: emulator!.connectionString, queues });
    const yard = createSwitchyard({
      jobs: [job],
      store: stores.create(),
      transports: [transport],
      logger: silentLogger,
    });
    const stop = new AbortController();
    const working = yard.work({ concurrency: 1, signal: stop.signal, waitMs: 200 });
    try {
      const { jobId } = await yard.submit('cancel_probe', undefined);
      while (started === 0) await sleep(5);
      expect(await yard.cancel(jobId)).toBe(true);
      expect((await yard.waitFor(jobId, { pollIntervalMs: 20 })).status).toBe('cancelled');
      const open = () => {
        const stats = emulator!.queueStats(queues.task);
        return stats.active + stats.locked;
      };
      while (open() > 0) await sleep(20);
      expect(reason).toMatchObject({ code: 'JOB_CANCELLED' });
      expect(started).toBe(1);
      expect(emulator!.queueStats(queues.task)).toMatchObject({ active: 0, deadLettered: 0 });
    } finally {
      stop.abort();
      await working;
      await yard.close();
    }
  });
});

/** Wraps a transport so that after `kill()` it behaves like a dead process: no receives, renewals or settlements. */
function killable(inner: Transport) {
  let dead = false;
  const transport: Transport = {
    name: inner.name,
    limits: inner.limits,
    send: (queue, messages, options) => inner.send(queue, messages, options),
    receive: async (queue, options) => {
      if (dead) {
        await new Promise((r) => setTimeout(r, options.waitMs ?? 0));
        return [];
      }
      return inner.receive(queue, options);
    },
    settle: async (settlements: readonly Settlement[]) => {
      if (!dead) await inner.settle(settlements);
    },
    extendLock: async (message: ReceivedMessage, ms: number) => {
      if (!dead) await inner.extendLock?.(message, ms);
    },
    close: () => inner.close(),
  };
  return { transport, kill: () => (dead = true) };
}
