import {
  createSwitchyard,
  defineJob,
  defineTask,
  isSwitchyardError,
  memoryStore,
  memoryTransport,
  silentLogger,
  stage,
  type TaskDefinition,
} from '@switchyard/core';
import type {
  ClaimRef,
  PackAdmission,
  ReceivedMessage,
  Store,
  Transport,
} from '@switchyard/core/driver';
import { faultyStore } from '@switchyard/core/testing';
import { helloWorld } from '@switchyard/example-jobs';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startYards } from './harness.js';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

/**
 * The task dead-letters once `count` are there (or after a second): a job fails as soon as the
 * barrier records its poisoned task, and the message is dead-lettered just after.
 */
async function deadLetters(transport: Transport, count: number) {
  let dead = await transport.listDeadLetters!('task');
  for (let i = 0; i < 100 && dead.length < count; i++) {
    await new Promise((r) => setTimeout(r, 10));
    dead = await transport.listDeadLetters!('task');
  }
  return dead;
}

function simpleJob(
  name: string,
  task: TaskDefinition<{ i: number }, unknown>,
  n: number,
  extra: { tolerateFailures?: number | { ratio: number } } = {},
) {
  return defineJob({
    name,
    stages: [
      stage({
        name: 'only',
        task,
        fanOut: () => Array.from({ length: n }, (_, i) => ({ i })),
        ...extra,
      }),
    ],
  });
}

describe('engine: hello_world end to end on the memory drivers', () => {
  it('runs both stages, streams results in order and reports per-stage counts', async () => {
    const h = startYards([helloWorld], { workers: 2 });
    cleanup = h.stop;
    const submitted = await h.yard.submit('hello_world', { n: 500, workMs: 0 });
    expect(submitted).toMatchObject({ created: true, status: 'queued', transport: 'memory' });
    const progress: number[] = [];
    const view = await h.yard.waitFor(submitted.jobId, {
      pollIntervalMs: 10,
      onProgress: (j) => progress.push(j.stages[0]!.succeeded),
    });
    expect(view.status).toBe('succeeded');
    expect(view.result).toEqual({ greeted: 500, replied: 500 });
    expect(
      view.stages.map((s) => [
        s.name,
        s.status,
        s.total,
        s.succeeded,
        s.failed,
        s.pending,
        s.running,
      ]),
    ).toEqual([
      ['greet', 'complete', 500, 500, 0, 0, 0],
      ['reply', 'complete', 500, 500, 0, 0, 0],
    ]);
    expect(view.durationMs).toBeGreaterThanOrEqual(0);
    expect(progress.length).toBeGreaterThan(0);
    const replies: string[] = [];
    for await (const r of h.yard.results(submitted.jobId, 'reply')) replies.push(r.result);
    expect(replies).toHaveLength(500);
    expect(replies[0]).toBe('re: hello #0');
    expect(replies[499]).toBe('re: hello #499');
  });

  it('is idempotent: the same params return the same job; a key names the job', async () => {
    const h = startYards([helloWorld]);
    cleanup = h.stop;
    const a = await h.yard.submit('hello_world', { n: 3, workMs: 0 });
    const b = await h.yard.submit('hello_world', { workMs: 0, n: 3 });
    expect(b).toMatchObject({ jobId: a.jobId, created: false });
    const c = await h.yard.submit(
      'hello_world',
      { n: 4, workMs: 0 },
      { idempotencyKey: 'order-42' },
    );
    const d = await h.yard.submit(
      'hello_world',
      { n: 5, workMs: 0 },
      { idempotencyKey: 'order-42' },
    );
    expect(d).toMatchObject({ jobId: c.jobId, created: false });
    expect(c.jobId).not.toBe(a.jobId);
    expect((await h.yard.waitFor(d.jobId)).result).toEqual({ greeted: 4, replied: 4 });
  });
});

describe('engine: bad input', () => {
  const yard = () =>
    createSwitchyard({
      jobs: [helloWorld],
      store: memoryStore(),
      transports: [memoryTransport()],
      logger: silentLogger,
    });

  it('rejects invalid params naming each field', async () => {
    const err = await yard()
      .submit('hello_world', { n: -1, workMs: 'x' } as never)
      .catch((e: unknown) => e);
    expect(isSwitchyardError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'INVALID_INPUT' });
    const paths = (err as { issues: { path: string }[] }).issues.map((i) => i.path).sort();
    expect(paths).toEqual(['params.n', 'params.workMs']);
  });

  it('rejects an unknown job, an unknown transport and a bad idempotency key', async () => {
    const y = yard();
    await expect(y.submit('nope' as 'hello_world', { n: 1, workMs: 0 })).rejects.toMatchObject({
      code: 'UNKNOWN_JOB',
    });
    await expect(
      y.submit('hello_world', { n: 1, workMs: 0 }, { transport: 'servicebus' }),
    ).rejects.toMatchObject({ code: 'UNKNOWN_TRANSPORT' });
    await expect(
      y.submit('hello_world', { n: 1, workMs: 0 }, { idempotencyKey: '' }),
    ).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('rejects params JSON cannot carry, naming the path', async () => {
    const free = defineJob({
      name: 'free',
      stages: [
        stage({ name: 's', task: defineTask({ name: 't', handler: () => 1 }), fanOut: () => [] }),
      ],
    });
    const y = createSwitchyard({
      jobs: [free],
      store: memoryStore(),
      transports: [memoryTransport()],
      logger: silentLogger,
    });
    await expect(y.submit('free', { a: { b: 10n } } as never)).rejects.toMatchObject({
      code: 'NOT_SERIALIZABLE',
      message: expect.stringContaining('params.a.b'),
    });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(y.submit('free', cyclic as never)).rejects.toMatchObject({
      code: 'NOT_SERIALIZABLE',
    });
  });

  it('dead-letters messages that are not ours, with a reason, and keeps going', async () => {
    const y = yard();
    const settle = async (body: unknown) => y.handle(body, { deliveryCount: 1 });
    expect(await settle(new Uint8Array([0xff, 0x00, 0x13]))).toMatchObject({
      action: 'deadLetter',
      reason: 'MalformedMessage',
    });
    expect(await settle('{"not":"ours"}')).toMatchObject({
      action: 'deadLetter',
      reason: 'MalformedMessage',
      description: expect.stringContaining('version'),
    });
    expect(await settle('{"v":99,"kind":"task"}')).toMatchObject({
      action: 'deadLetter',
      description: expect.stringContaining('unknown envelope version 99'),
    });
    expect(
      await settle({ v: 1, kind: 'task', jobId: 'ghost', stage: 0, taskId: 'ghost.0.0' }),
    ).toMatchObject({ action: 'deadLetter', reason: 'JobNotFound' });
    expect(await settle({ v: 1, kind: 'stage', jobId: 'ghost', stage: 0 })).toMatchObject({
      action: 'deadLetter',
      reason: 'JobNotFound',
    });
    const { jobId } = await y.submit('hello_world', { n: 1, workMs: 0 });
    expect(
      await settle({ v: 1, kind: 'task', jobId, stage: 0, taskId: `${jobId}.0.77` }),
    ).toMatchObject({ action: 'deadLetter', reason: 'TaskNotFound' });
  });
});

describe('engine: retries, poison, timeouts, tolerance', () => {
  it('retries with exponential backoff, then succeeds', async () => {
    const attempts: number[] = [];
    const flaky = defineTask({
      name: 'flaky',
      input: z.object({ i: z.number() }),
      retry: { maxAttempts: 4, initialDelayMs: 100, factor: 2, jitter: 0 },
      handler: (_input, ctx) => {
        attempts.push(Date.now());
        if (ctx.attempt < 3) throw new Error(`transient ${ctx.attempt}`);
        return ctx.attempt;
      },
    });
    const h = startYards([simpleJob('flaky-job', flaky, 1)]);
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('flaky-job', undefined);
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.status).toBe('succeeded');
    expect(attempts).toHaveLength(3);
    expect(attempts[1]! - attempts[0]!).toBeGreaterThanOrEqual(95);
    expect(attempts[2]! - attempts[1]!).toBeGreaterThanOrEqual(195);
    const [task] = (await h.store.listTasks(jobId)).tasks;
    expect(task).toMatchObject({ status: 'succeeded', attempts: 3, result: 3 });
    const [metrics] = (await h.yard.metrics()).transports;
    expect(metrics?.retries).toBe(2);
  });

  it('poisons a task that always throws: dead-lettered with its last error, job failed naming it, others unaffected', async () => {
    const sometimes = defineTask({
      name: 'sometimes',
      input: z.object({ i: z.number() }),
      retry: { maxAttempts: 2, initialDelayMs: 10 },
      handler: ({ i }) => {
        if (i === 3) throw new Error('always broken');
        return i * 2;
      },
    });
    const h = startYards([simpleJob('poison-job', sometimes, 6)]);
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('poison-job', undefined);
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.status).toBe('failed');
    expect(view.error).toMatchObject({
      code: 'JOB_FAILED',
      message: expect.stringContaining(`${jobId}.0.3`),
    });
    expect(view.error?.message).toContain('always broken');
    const tasks = (await h.store.listTasks(jobId)).tasks;
    expect(tasks.map((t) => t.status)).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
      'failed',
      'succeeded',
      'succeeded',
    ]);
    expect(tasks[3]).toMatchObject({ attempts: 2, error: { message: 'always broken' } });
    const dead = await deadLetters(h.transport, 1);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({
      reason: 'MaxAttemptsExceeded',
      description: expect.stringContaining('always broken'),
    });
    expect((await h.yard.metrics()).transports[0]?.poisoned).toBe(1);
  });

  it('poisons a task that throws a value that cannot be read, and its worker keeps its slot', async () => {
    const unreadable = defineTask({
      name: 'unreadable',
      input: z.object({ i: z.number() }),
      retry: { maxAttempts: 1 },
      handler: ({ i }) => {
        if (i === 0) throw Object.assign(Object.create(null), { toJSON: () => JSON.parse('{') });
        return i;
      },
    });
    // One slot: an attempt that kept it would leave nothing to run the other tasks.
    const h = startYards([simpleJob('unreadable-job', unreadable, 3)], { concurrency: 1 });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('unreadable-job', undefined);
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.status).toBe('failed');
    expect(view.stages[0]).toMatchObject({ succeeded: 2, failed: 1 });
    const [first] = (await h.store.listTasks(jobId)).tasks;
    expect(first).toMatchObject({
      status: 'failed',
      error: { message: expect.stringContaining('cannot be read') },
    });
  });

  it('lets a stage tolerate failures', async () => {
    const half = defineTask({
      name: 'half',
      input: z.object({ i: z.number() }),
      retry: { maxAttempts: 1 },
      handler: ({ i }) => {
        if (i % 2) throw new Error('odd');
        return i;
      },
    });
    const h = startYards([simpleJob('tolerant', half, 10, { tolerateFailures: { ratio: 0.5 } })]);
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('tolerant', undefined);
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.status).toBe('succeeded');
    expect(view.stages[0]).toMatchObject({ succeeded: 5, failed: 5 });
  });

  it('aborts a handler on timeout and counts a failed attempt', async () => {
    let sawAbort = 0;
    const slow = defineTask({
      name: 'slow',
      input: z.object({ i: z.number() }),
      timeoutMs: 50,
      retry: { maxAttempts: 2, initialDelayMs: 10 },
      handler: (_input, ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            sawAbort++;
            resolve('late');
          });
        }),
    });
    const h = startYards([simpleJob('timeouts', slow, 1)]);
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('timeouts', undefined);
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.status).toBe('failed');
    expect(sawAbort).toBe(2);
    const [task] = (await h.store.listTasks(jobId)).tasks;
    expect(task).toMatchObject({
      status: 'failed',
      attempts: 2,
      timeouts: 2,
      error: { code: 'TASK_TIMEOUT' },
    });
    expect((await h.yard.metrics()).transports[0]?.timeouts).toBe(2);
  });

  it('cancel stops new tasks from starting and marks the job cancelled', async () => {
    let started = 0;
    const slowish = defineTask({
      name: 'slowish',
      input: z.object({ i: z.number() }),
      handler: async () => {
        started++;
        await new Promise((r) => setTimeout(r, 20));
      },
    });
    const h = startYards([simpleJob('cancel-me', slowish, 200)], { concurrency: 2 });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('cancel-me', undefined);
    while (started < 4) await new Promise((r) => setTimeout(r, 5));
    expect(await h.yard.cancel(jobId)).toBe(true);
    const atCancel = started;
    await new Promise((r) => setTimeout(r, 200));
    expect(started).toBeLessThanOrEqual(atCancel + 2);
    const view = await h.yard.waitFor(jobId);
    expect(view.status).toBe('cancelled');
    expect(await h.yard.cancel(jobId)).toBe(false);
  });
});

describe('engine: batching and the claim check', () => {
  it('sends within the transport limits, with bounded concurrency', async () => {
    const inner = memoryTransport({ limits: { maxBatchMessages: 100, sendConcurrency: 3 } });
    let inFlight = 0;
    let maxInFlight = 0;
    const sizes: number[] = [];
    const spy: Transport = {
      name: inner.name,
      extendLock: inner.extendLock!.bind(inner),
      limits: inner.limits,
      send: async (queue, messages) => {
        if (queue === 'task') sizes.push(messages.length);
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 1));
        inFlight--;
        return inner.send(queue, messages);
      },
      receive: inner.receive.bind(inner),
      settle: inner.settle.bind(inner),
      close: inner.close.bind(inner),
    };
    const noop = defineTask({
      name: 'noop',
      input: z.object({ i: z.number() }),
      handler: ({ i }) => i,
    });
    // Unwindowed: the fan-out sends all 5,000 tasks itself, through its bounded sends.
    const h = startYards([simpleJob('wide', noop, 5000)], {
      transports: [spy],
      concurrency: 256,
      batching: { window: false },
    });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('wide', undefined);
    expect((await h.yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(5000);
    expect(Math.max(...sizes)).toBe(100);
    expect(maxInFlight).toBeLessThanOrEqual(3 + 1);
  });

  it('carries task inputs over the message limit through the store', async () => {
    const transport = memoryTransport({ limits: { maxMessageBytes: 16 * 1024 } });
    const big = defineTask({
      name: 'big',
      input: z.object({ blob: z.string() }),
      handler: ({ blob }) => blob.length,
    });
    const job = defineJob({
      name: 'big-job',
      stages: [
        stage({
          name: 's',
          task: big,
          fanOut: () => [{ blob: 'é'.repeat(100_000) }, { blob: 'small' }],
        }),
      ],
    });
    const h = startYards([job], { transports: [transport] });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('big-job', undefined);
    expect((await h.yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    const results = [];
    for await (const r of h.yard.results(jobId)) results.push(r.result);
    expect(results).toEqual([100_000, 5]);
  });
});

describe('engine: fairness window (batching.window)', () => {
  it('finishes a small job submitted behind a big one while the big one still runs', async () => {
    const slow = defineTask({
      name: 'slow',
      handler: async ({ i }: { i: number }) => {
        await new Promise((r) => setTimeout(r, 2));
        return i;
      },
    });
    const quick = defineTask({ name: 'quick', handler: ({ i }: { i: number }) => i });
    const h = startYards([simpleJob('big', slow, 3000), simpleJob('small', quick, 1)], {
      workers: 2,
      concurrency: 16,
      batching: { window: 64 },
    });
    cleanup = h.stop;
    const big = await h.yard.submit('big', undefined);
    // Behind the big job's fan-out: its first window is in the queue before the small job.
    while (((await h.yard.getJob(big.jobId))?.stages[0]?.waitingForWindow ?? 0) < 2000)
      await new Promise((r) => setTimeout(r, 5));
    const small = await h.yard.submit('small', undefined);
    expect((await h.yard.waitFor(small.jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    const during = await h.yard.getJob(big.jobId);
    expect(during?.status).toBe('running');
    expect(during?.stages[0]?.succeeded).toBeLessThan(3000);
    expect((await h.yard.waitFor(big.jobId, { pollIntervalMs: 20 })).status).toBe('succeeded');
  });

  it('never has more of a stage waiting in the transport than its window, yet fills every slot, and runs every task once', async () => {
    const inner = memoryTransport({ visibilityTimeoutMs: 500 });
    const window = 10;
    let sent = 0;
    const received = new Set<string>();
    let ended = 0;
    let overWindow = 0;
    let mostRunning = 0;
    const spy: Transport = {
      name: inner.name,
      limits: inner.limits,
      extendLock: inner.extendLock!.bind(inner),
      receive: async (queue, options) => {
        const got = await inner.receive(queue, options);
        if (queue === 'task') for (const m of got) received.add(m.id);
        return got;
      },
      settle: inner.settle.bind(inner),
      close: inner.close.bind(inner),
      send: (queue, messages, options) => {
        if (queue === 'task') {
          sent += messages.length;
          // A task is released only while fewer than the window wait: the others a worker took.
          if (sent > received.size + window) overWindow++;
        }
        return inner.send(queue, messages, options);
      },
    };
    const runs = new Map<number, number>();
    let running = 0;
    const counted = defineTask({
      name: 'counted',
      handler: async ({ i }: { i: number }) => {
        runs.set(i, (runs.get(i) ?? 0) + 1);
        mostRunning = Math.max(mostRunning, ++running);
        await new Promise((r) => setTimeout(r, 1 + Math.random() * 3));
        running--;
        ended++;
        return i;
      },
    });
    const h = startYards([simpleJob('windowed', counted, 500)], {
      workers: 2,
      concurrency: 8,
      transports: [spy],
      batching: { window, chunkSize: 64 },
    });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('windowed', undefined);
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.status).toBe('succeeded');
    expect(view.stages[0]).toMatchObject({ succeeded: 500, failed: 0 });
    expect(sent).toBe(500);
    expect(ended).toBe(500);
    expect(overWindow).toBe(0);
    // The window bounds the queue, not the workers: their 16 slots ran more than 10 at once.
    expect(mostRunning).toBeGreaterThan(window);
    expect([...runs.keys()].sort((a, b) => a - b)).toEqual(
      Array.from({ length: 500 }, (_, i) => i),
    );
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
  });
});

describe('engine: fairness window and a fleet of slow tasks', () => {
  it('fills every slot before any task ends: tasks taken by workers make room in the queue', async () => {
    const window = 2;
    let running = 0;
    let ended = 0;
    let mostBeforeAnyEnded = 0;
    const slow = defineTask({
      name: 'slow',
      handler: async ({ i }: { i: number }) => {
        running++;
        if (ended === 0) mostBeforeAnyEnded = Math.max(mostBeforeAnyEnded, running);
        await new Promise((r) => setTimeout(r, 400));
        running--;
        ended++;
        return i;
      },
    });
    const h = startYards([simpleJob('slow-fleet', slow, 12)], {
      workers: 2,
      concurrency: 4,
      batching: { window },
    });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('slow-fleet', undefined);
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.status).toBe('succeeded');
    // Two workers of 4 slots: all 8 busy within the first tasks' 400 ms, not 2 at a time.
    expect(mostBeforeAnyEnded).toBe(8);
  });
});

describe('engine: packed task messages (batching.packTasks)', () => {
  /** The memory transport, counting the task messages sent and the tasks they carry. */
  function countingTransport() {
    const inner = memoryTransport({ visibilityTimeoutMs: 500 });
    const sent = { messages: 0, packs: 0, tasks: 0 };
    const transport: Transport = {
      name: inner.name,
      limits: inner.limits,
      receive: inner.receive.bind(inner),
      settle: inner.settle.bind(inner),
      extendLock: inner.extendLock!.bind(inner),
      listDeadLetters: inner.listDeadLetters!.bind(inner),
      close: inner.close.bind(inner),
      send: async (queue, messages, options) => {
        if (queue === 'task') {
          for (const m of messages) {
            const body = JSON.parse(m.body) as { kind: string; tasks?: unknown[] };
            sent.messages++;
            if (body.kind === 'tasks') sent.packs++;
            sent.tasks += body.tasks?.length ?? 1;
          }
        }
        return inner.send(queue, messages, options);
      },
    };
    return { transport, sent };
  }

  it('sends a fan-out as packs and runs every task once', async () => {
    const runs = new Map<number, number>();
    const noop = defineTask({
      name: 'noop',
      input: z.object({ i: z.number() }),
      handler: ({ i }) => {
        runs.set(i, (runs.get(i) ?? 0) + 1);
        return i * 2;
      },
    });
    const { transport, sent } = countingTransport();
    const h = startYards([simpleJob('packed', noop, 1000)], {
      transports: [transport],
      batching: { packTasks: 50 },
      concurrency: 100,
    });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('packed', undefined);
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.status).toBe('succeeded');
    expect(view.stages[0]).toMatchObject({ succeeded: 1000, failed: 0 });
    expect(sent).toEqual({ messages: 20, packs: 20, tasks: 1000 });
    expect(runs.size).toBe(1000);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    const results: number[] = [];
    for await (const r of h.yard.results<number>(jobId)) results.push(r.result);
    expect(results).toEqual(Array.from({ length: 1000 }, (_, i) => i * 2));
  });

  it('splits out tasks to retry with their backoff or to dead-letter; the rest run once', async () => {
    const attempts = new Map<number, number[]>();
    const mixed = defineTask({
      name: 'mixed',
      input: z.object({ i: z.number() }),
      retry: { maxAttempts: 2, initialDelayMs: 150, factor: 2, jitter: 0 },
      handler: ({ i }, ctx) => {
        attempts.set(i, [...(attempts.get(i) ?? []), Date.now()]);
        if (i === 3 && ctx.attempt === 1) throw new Error('transient');
        if (i === 7) throw new Error('always broken');
        // A result JSON cannot carry fails the task at once: dead-lettered out of the pack.
        if (i === 5) return 10n;
        return i;
      },
    });
    const { transport, sent } = countingTransport();
    const h = startYards([simpleJob('packed-mixed', mixed, 10)], {
      transports: [transport],
      batching: { packTasks: 10 },
    });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('packed-mixed', undefined);
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.status).toBe('failed');
    expect(view.error?.message).toContain(`${jobId}.0.7`);
    const tasks = (await h.store.listTasks(jobId)).tasks;
    expect(tasks.map((t) => t.status)).toEqual([
      ...Array(5).fill('succeeded'),
      'failed',
      'succeeded',
      'failed',
      'succeeded',
      'succeeded',
    ]);
    expect(tasks[3]).toMatchObject({ attempts: 2, result: 3 });
    expect(tasks[7]).toMatchObject({ attempts: 2, error: { message: 'always broken' } });
    // Task 3's retry waited its backoff in a message of its own.
    const [first, second] = attempts.get(3)!;
    expect(second! - first!).toBeGreaterThanOrEqual(145);
    for (const i of [0, 1, 2, 4, 5, 6, 8, 9]) expect(attempts.get(i)).toHaveLength(1);
    // The pack, then split out: task 3's and task 7's retries and task 5's dead-letter (task 7's
    // last attempt came in a message of its own, dead-lettered as is).
    expect(sent).toEqual({ messages: 4, packs: 1, tasks: 13 });
    const dead = await deadLetters(h.transport, 2);
    const byTask = Object.fromEntries(
      dead.map((d) => [(JSON.parse(d.body) as { taskId: string }).taskId, d]),
    );
    expect(Object.keys(byTask).sort()).toEqual([`${jobId}.0.5`, `${jobId}.0.7`]);
    expect(byTask[`${jobId}.0.7`]).toMatchObject({
      reason: 'MaxAttemptsExceeded',
      description: expect.stringContaining('always broken'),
    });
    expect(byTask[`${jobId}.0.5`]).toMatchObject({ reason: 'NotSerializable' });
  });

  it('packs within the message limit, carrying an input too large to share one by reference', async () => {
    const transport = memoryTransport({ limits: { maxMessageBytes: 16 * 1024 } });
    const sizes: number[] = [];
    const spy: Transport = {
      ...transport,
      name: transport.name,
      limits: transport.limits,
      send: (queue, messages, options) => {
        if (queue === 'task') for (const m of messages) sizes.push(Buffer.byteLength(m.body));
        return transport.send(queue, messages, options);
      },
      receive: transport.receive.bind(transport),
      settle: transport.settle.bind(transport),
      close: transport.close.bind(transport),
    };
    const big = defineTask({
      name: 'big',
      input: z.object({ blob: z.string() }),
      handler: ({ blob }) => blob.length,
    });
    const job = defineJob({
      name: 'big-packed',
      stages: [
        stage({
          name: 's',
          task: big,
          fanOut: () => [
            { blob: 'é'.repeat(100_000) },
            ...Array.from({ length: 20 }, () => ({ blob: 'x'.repeat(4000) })),
          ],
        }),
      ],
    });
    const h = startYards([job], { transports: [spy], batching: { packTasks: 10 } });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('big-packed', undefined);
    expect((await h.yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    const results: number[] = [];
    for await (const r of h.yard.results<number>(jobId)) results.push(r.result);
    expect(results).toEqual([100_000, ...Array(20).fill(4000)]);
    // 20 tasks of ~4 KB fit 16 KiB messages 3 or 4 at a time: more than the 3 packs of 10.
    expect(Math.max(...sizes)).toBeLessThanOrEqual(16 * 1024);
    expect(sizes.length).toBeGreaterThan(3);
  });

  /** A memory store that counts pack admissions and per-task claims. */
  function countingStore() {
    const inner = memoryStore();
    const calls = { packs: 0, packedTasks: 0, claimedRefs: 0 };
    const store = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'admitPacks')
          return (packs: PackAdmission[]) => {
            calls.packs += packs.length;
            for (const p of packs) calls.packedTasks += p.tasks;
            return target.admitPacks!(packs);
          };
        if (prop === 'claimTasks')
          return (refs: ClaimRef[]) => {
            calls.claimedRefs += refs.length;
            return target.claimTasks(refs);
          };
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    return { store, calls };
  }

  /** A started one-stage job `j` of `packed` with tasks 0..count-1 inserted and sealed. */
  async function startedJob(store: Store, count: number, jobId = 'j') {
    await store.createJob({
      id: jobId,
      name: 'packed',
      params: null,
      transport: 'memory',
      stageCount: 1,
    });
    await store.startStage(jobId, 0, 'only');
    const tasks = Array.from({ length: count }, (_, i) => ({ index: i, input: { i } }));
    await store.insertTasks(jobId, 0, tasks);
    await store.sealStage(jobId, 0, count);
  }

  const pack = (indexes: number[], extra: object = {}) => ({
    v: 1,
    kind: 'tasks',
    jobId: 'j',
    stage: 0,
    ...extra,
    tasks: indexes.map((i) => ({ index: i, input: { i } })),
  });

  function countingTask() {
    const runs: number[] = [];
    const task = defineTask({
      name: 'counted',
      input: z.object({ i: z.number() }),
      handler: ({ i }) => {
        runs.push(i);
        return i;
      },
    });
    return { task, runs };
  }

  it("admits a fan-out's own packs with one check per pack, not one per task", async () => {
    const { store, calls } = countingStore();
    const { task, runs } = countingTask();
    const h = startYards([simpleJob('packed', task, 100)], {
      store,
      batching: { packTasks: 25 },
      concurrency: 100,
    });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('packed', undefined);
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.status).toBe('succeeded');
    expect(calls).toEqual({ packs: 4, packedTasks: 100, claimedRefs: 0 });
    expect(runs.sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    // Each outcome recorded its attempt and ended the running count the admission started.
    expect(view.stages[0]).toMatchObject({ succeeded: 100, running: 0 });
    const page = await store.listTasks(jobId, { limit: 100 });
    expect(page.tasks.every((t) => t.attempts === 1 && t.startedAt instanceof Date)).toBe(true);
  });

  it("checks each task of a resumed fan-out's pack and of a redelivery: finished ones do not run", async () => {
    const { store, calls } = countingStore();
    const { task, runs } = countingTask();
    const y = createSwitchyard({
      jobs: [simpleJob('packed', task, 4)],
      store,
      transports: [memoryTransport()],
      logger: silentLogger,
      batching: { packTasks: 4 },
    });
    cleanup = () => y.close();
    await startedJob(store, 6);
    await store.completeTasks(
      [0, 1].map((i) => ({
        jobId: 'j',
        stage: 0,
        index: i,
        taskId: `j.0.${i}`,
        status: 'succeeded',
        result: i,
      })),
    );
    expect(await y.handle(pack([0, 1, 2]), { deliveryCount: 2 })).toEqual({ action: 'complete' });
    expect(await y.handle(pack([1, 3], { resumed: true }), { deliveryCount: 1 })).toEqual({
      action: 'complete',
    });
    expect(runs).toEqual([2, 3]);
    expect(calls).toMatchObject({ packs: 0, claimedRefs: 5 });
    // A first sending's pack is admitted whole: a duplicate of a finished task runs again, and
    // its outcome, not applied twice, leaves the recorded result alone.
    expect(await y.handle(pack([0, 4]), { deliveryCount: 1 })).toEqual({ action: 'complete' });
    expect(runs).toEqual([2, 3, 0, 4]);
    expect(calls).toMatchObject({ packs: 1, claimedRefs: 6 });
    expect((await store.getTask('j.0.4'))?.status).toBe('succeeded');
    // The duplicate was counted running and never ended; completing the stage clears the count.
    expect((await store.getStages('j'))[0]).toMatchObject({ succeeded: 5, running: 1 });
    await y.handle(pack([5]), { deliveryCount: 1 });
    expect((await store.getStages('j'))[0]).toMatchObject({ status: 'complete', running: 0 });
  });

  it("marks a resumed fan-out's packs so that their tasks are checked one by one", async () => {
    const { store, calls } = countingStore();
    // The first insert commits, then its worker "crashes": the redelivered stage message resumes.
    let crashed = false;
    const crashing = faultyStore(store, {
      methods: ['insertTasks'],
      crashAfter: () => {
        if (crashed) return false;
        crashed = true;
        return true;
      },
    });
    const { transport, sent } = countingTransport();
    const bodies: { resumed?: boolean }[] = [];
    const spy: Transport = {
      ...transport,
      send: (queue, messages, options) => {
        if (queue === 'task') for (const m of messages) bodies.push(JSON.parse(m.body));
        return transport.send(queue, messages, options);
      },
    };
    const { task, runs } = countingTask();
    const h = startYards([simpleJob('packed', task, 20)], {
      store: crashing,
      transports: [spy],
      batching: { packTasks: 10, window: false },
    });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('packed', undefined);
    expect((await h.yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    expect(crashed).toBe(true);
    expect(sent).toMatchObject({ packs: 2, tasks: 20 });
    expect(bodies.map((b) => b.resumed)).toEqual([true, true]);
    expect(calls).toMatchObject({ packs: 0, claimedRefs: 20 });
    expect(runs.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('runs nothing of a pack whose job is not running or whose stage is complete', async () => {
    const { task, runs } = countingTask();
    const store = memoryStore();
    const y = createSwitchyard({
      jobs: [simpleJob('packed', task, 2)],
      store,
      transports: [memoryTransport()],
      logger: silentLogger,
    });
    cleanup = () => y.close();
    await startedJob(store, 2);
    await store.cancelJob('j');
    expect(await y.handle(pack([0, 1]), { deliveryCount: 1 })).toEqual({ action: 'complete' });
    await startedJob(store, 1, 'k');
    await store.completeTasks([
      { jobId: 'k', stage: 0, index: 0, taskId: 'k.0.0', status: 'succeeded' },
    ]);
    expect(await y.handle({ ...pack([0]), jobId: 'k' }, { deliveryCount: 1 })).toEqual({
      action: 'complete',
    });
    expect(runs).toEqual([]);
  });

  it('dead-letters a task of a foreign pack that does not exist (found when its outcome does not apply)', async () => {
    const { task, runs } = countingTask();
    const h = startYards([simpleJob('packed', task, 2)], { batching: { packTasks: 2 } });
    cleanup = h.stop;
    await startedJob(h.store, 2);
    await h.transport.send('task', [{ body: JSON.stringify(pack([1, 7])) }]);
    const dead = await deadLetters(h.transport, 1);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({
      reason: 'TaskNotFound',
      description: expect.stringContaining('task j.0.7 does not exist'),
    });
    expect(runs.sort()).toEqual([1, 7]);
    expect((await h.store.getTask('j.0.1'))?.status).toBe('succeeded');
  });

  it("counts concurrency in tasks: one slow task of a pack holds one slot, not the pack's", async () => {
    let release: () => void = () => {};
    const slowDone = new Promise<void>((resolve) => {
      release = resolve;
    });
    const finished: number[] = [];
    const task = defineTask({
      name: 'one-slow',
      input: z.object({ i: z.number() }),
      handler: async ({ i }) => {
        if (i === 0) await slowDone;
        finished.push(i);
        return i;
      },
    });
    const h = startYards([simpleJob('one-slow', task, 12)], {
      batching: { packTasks: 4 },
      concurrency: 4,
    });
    cleanup = async () => {
      release();
      await h.stop();
    };
    const { jobId } = await h.yard.submit('one-slow', undefined);
    // With a pack counted as 4 slots, the worker could not take a second pack before task 0 ends.
    for (let i = 0; i < 200 && finished.length < 11; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(finished.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    release();
    expect((await h.yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
  });

  it('never runs more handlers at once than the concurrency, whatever the pack size', async () => {
    let running = 0;
    let most = 0;
    const task = defineTask({
      name: 'bounded',
      input: z.object({ i: z.number() }),
      handler: async ({ i }) => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 2 + (i % 3)));
        running--;
        return i;
      },
    });
    // Packs of 7 into 5 slots: a received pack brings more tasks than there are free slots.
    const h = startYards([simpleJob('bounded', task, 120)], {
      batching: { packTasks: 7 },
      concurrency: 5,
    });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('bounded', undefined);
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.stages[0]).toMatchObject({ succeeded: 120, running: 0 });
    expect(most).toBe(5);
  });

  it('rejects a packTasks outside 1..1000, naming the field', () => {
    for (const packTasks of [0, 1.5, 1001, Number.NaN]) {
      expect(() =>
        createSwitchyard({
          jobs: [],
          store: memoryStore(),
          transports: [memoryTransport()],
          batching: { packTasks },
        }),
      ).toThrow(/batching\.packTasks: must be an integer from 1 to 1000/);
    }
  });
});

describe('engine: lock extension', () => {
  it("extends a long task's lock, never with two extensions of one message in flight", async () => {
    const inner = memoryTransport({ visibilityTimeoutMs: 150 });
    let calls = 0;
    const pending = new Map<ReceivedMessage, number>();
    let maxPending = 0;
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slowBackend: Transport = {
      name: inner.name,
      limits: inner.limits,
      send: inner.send.bind(inner),
      receive: inner.receive.bind(inner),
      settle: inner.settle.bind(inner),
      close: inner.close.bind(inner),
      // A backend that stops answering: the first extension hangs until released.
      extendLock: async (message, ms) => {
        calls++;
        const now = (pending.get(message) ?? 0) + 1;
        pending.set(message, now);
        maxPending = Math.max(maxPending, now);
        await released;
        pending.set(message, (pending.get(message) ?? 1) - 1);
        return inner.extendLock!(message, ms);
      },
    };
    const long = defineTask({
      name: 'long',
      input: z.object({ i: z.number() }),
      handler: async () => {
        await new Promise((r) => setTimeout(r, 600));
      },
    });
    const h = startYards([simpleJob('long-job', long, 1)], {
      transports: [slowBackend],
      visibilityTimeoutMs: 150,
    });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('long-job', undefined);
    await new Promise((r) => setTimeout(r, 400));
    // ~8 renewal ticks have passed while each delivery's first extension hangs (the lock lapses,
    // so the task is redelivered: that delivery is a message of its own).
    expect(maxPending).toBe(1);
    release();
    expect((await h.yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    expect(calls).toBeGreaterThan(1);
    expect(maxPending).toBe(1);
  });
});

describe('engine: reconciler', () => {
  it('runs one pass at a time per instance; a call during a pass joins it', async () => {
    const inner = memoryStore();
    let searches = 0;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    // A slow pass: the lease admits its owner again, so only the instance can keep passes apart.
    const store = new Proxy(inner, {
      get(target, key, receiver) {
        if (key === 'findStuck')
          return async (options: Parameters<typeof inner.findStuck>[0]) => {
            searches++;
            await gate;
            return target.findStuck(options);
          };
        const value = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const yard = createSwitchyard({
      jobs: [],
      store,
      transports: [memoryTransport()],
      logger: silentLogger,
      reconcile: { intervalMs: 0 },
    });
    const first = yard.reconcile({ olderThanMs: 0 });
    const second = yard.reconcile({ olderThanMs: 0 });
    await new Promise((r) => setTimeout(r, 20));
    expect(searches).toBe(1);
    release();
    expect(await second).toEqual(await first);
    expect((await first).ran).toBe(true);
    await yard.reconcile({ olderThanMs: 0 });
    expect(searches).toBe(2);
    await yard.close();
  });
});

describe('engine: serverless handle()', () => {
  it('runs a job by handing each delivered message to handle() and applying its settlement', async () => {
    const store = memoryStore();
    const transport = memoryTransport({ visibilityTimeoutMs: 1000 });
    const yard = createSwitchyard({
      jobs: [helloWorld],
      store,
      transports: [transport],
      logger: silentLogger,
    });
    const { jobId } = await yard.submit('hello_world', { n: 20, workMs: 0 });
    const deadline = Date.now() + 10_000;
    while ((await yard.getJob(jobId))?.status !== 'succeeded' && Date.now() < deadline) {
      for (const queue of ['stage', 'task'] as const) {
        const messages = await transport.receive(queue, { maxMessages: 16, waitMs: 5 });
        const settlements = await Promise.all(
          messages.map((m) => yard.handle(m.body, { deliveryCount: m.deliveryCount })),
        );
        await transport.settle(
          messages.map((message, i) => {
            const s = settlements[i]!;
            return s.action === 'retry'
              ? { message, action: 'retry', delayMs: s.delayMs }
              : s.action === 'deadLetter'
                ? { message, ...s }
                : { message, action: 'complete' };
          }),
        );
      }
    }
    expect((await yard.getJob(jobId))?.result).toEqual({ greeted: 20, replied: 20 });
    await yard.close();
  });

  it('returns from handle() only once the releases its message made are sent (window)', async () => {
    // A release that takes a while: handle() must not return before it is sent.
    const inner = memoryStore();
    const store: Store = Object.create(inner);
    store.releaseTasks = async (windows) => {
      await new Promise((r) => setTimeout(r, 50));
      return inner.releaseTasks(windows);
    };
    const transport = memoryTransport({ visibilityTimeoutMs: 1000 });
    const quick = defineTask({ name: 'quick', handler: ({ i }: { i: number }) => i });
    const yard = createSwitchyard({
      jobs: [simpleJob('one-by-one', quick, 3)],
      store,
      transports: [transport],
      logger: silentLogger,
      batching: { window: 1 },
    });
    const { jobId } = await yard.submit('one-by-one', undefined);
    const one = async (queue: 'stage' | 'task') => {
      const [message] = await transport.receive(queue, { maxMessages: 1, waitMs: 0 });
      expect(message).toBeDefined();
      await yard.handle(message!.body);
      await transport.settle([{ message: message!, action: 'complete' }]);
    };
    await one('stage');
    // A frozen host runs nothing after handle() returns: each task's release is already sent.
    for (let i = 0; i < 3; i++) await one('task');
    // The job has no finalize: the last task's handle() finished it, with no message left.
    expect((await yard.getJob(jobId))?.status).toBe('succeeded');
    expect(await transport.receive('stage', { maxMessages: 1, waitMs: 0 })).toEqual([]);
    await yard.close();
  });

  it('poisons on the last delivery the host allows, even with attempts left', async () => {
    const failing = defineTask({
      name: 'failing',
      input: z.object({ i: z.number() }),
      retry: { maxAttempts: 10 },
      handler: () => {
        throw new Error('nope');
      },
    });
    const store = memoryStore();
    const transport = memoryTransport();
    const yard = createSwitchyard({
      jobs: [simpleJob('host-poison', failing, 1)],
      store,
      transports: [transport],
      logger: silentLogger,
    });
    const { jobId } = await yard.submit('host-poison', undefined);
    const [stageMsg] = await transport.receive('stage', { maxMessages: 1 });
    expect(await yard.handle(stageMsg!.body)).toEqual({ action: 'complete' });
    const [taskMsg] = await transport.receive('task', { maxMessages: 1 });
    expect(await yard.handle(taskMsg!.body, { deliveryCount: 1, maxDeliveries: 2 })).toMatchObject({
      action: 'retry',
    });
    expect(await yard.handle(taskMsg!.body, { deliveryCount: 2, maxDeliveries: 2 })).toMatchObject({
      action: 'deadLetter',
      reason: 'MaxDeliveriesExceeded',
    });
    expect((await yard.getJob(jobId))?.status).toBe('failed');
  });
});

describe('engine: admitted first deliveries', () => {
  it('writes nothing before a first attempt, and counts an attempt lost with its worker', async () => {
    const attempts: number[] = [];
    const flaky = defineTask({
      name: 'flaky',
      input: z.object({ i: z.number() }),
      retry: { maxAttempts: 5, initialDelayMs: 1 },
      handler: (_input, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt < 3) throw new Error(`attempt ${ctx.attempt} fails`);
        return 'done';
      },
    });
    const store = memoryStore();
    const transport = memoryTransport();
    const yard = createSwitchyard({
      jobs: [simpleJob('admitted', flaky, 1)],
      store,
      transports: [transport],
      logger: silentLogger,
    });
    const { jobId } = await yard.submit('admitted', undefined);
    const [stageMsg] = await transport.receive('stage', { maxMessages: 1 });
    await yard.handle(stageMsg!.body);
    const [taskMsg] = await transport.receive('task', { maxMessages: 1 });
    const id = `${jobId}.0.0`;
    expect(await store.getTask(id)).toMatchObject({ status: 'pending', attempts: 0 });
    // Delivery 1 was admitted and its worker died mid-attempt (simulated: it never reported).
    // Delivery 2 is claimed and counts that lost attempt.
    expect(await yard.handle(taskMsg!.body, { deliveryCount: 2 })).toMatchObject({
      action: 'retry',
    });
    expect(await store.getTask(id)).toMatchObject({ status: 'pending', attempts: 2 });
    expect(await yard.handle(taskMsg!.body, { deliveryCount: 3 })).toEqual({ action: 'complete' });
    expect(attempts).toEqual([2, 3]);
    expect(await store.getTask(id)).toMatchObject({ status: 'succeeded', attempts: 3 });
    await yard.close();
  });

  it('records the attempt of an admitted task with its outcome', async () => {
    const store = memoryStore();
    const transport = memoryTransport();
    const yard = createSwitchyard({
      jobs: [helloWorld],
      store,
      transports: [transport],
      logger: silentLogger,
      batching: { packTasks: 4 },
    });
    const { jobId } = await yard.submit('hello_world', { n: 10, workMs: 0 });
    const controller = new AbortController();
    const worker = yard.work({ signal: controller.signal, waitMs: 20 });
    await yard.waitFor(jobId, { signal: AbortSignal.timeout(10_000), pollIntervalMs: 20 });
    controller.abort();
    await worker;
    const page = await store.listTasks(jobId, { limit: 100 });
    expect(page.tasks).toHaveLength(20);
    for (const task of page.tasks) {
      expect(task).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect(task.startedAt).toBeInstanceOf(Date);
    }
    expect((await store.getStages(jobId)).map((s) => s.running)).toEqual([0, 0]);
    await yard.close();
  });
});

describe('engine: worker shutdown', () => {
  it('aborts running handlers through ctx.signal, read before or after, and their tasks run again uncounted', async () => {
    const store = memoryStore();
    const transport = memoryTransport();
    let stopping = false;
    let started = 0;
    const abortedWhenRead: boolean[] = [];
    let release!: () => void;
    const stopped = new Promise<void>((resolve) => {
      release = resolve;
    });
    const waits = defineTask({
      name: 'waits',
      input: z.object({ i: z.number() }),
      handler: async (_input, ctx) => {
        if (stopping) return 'done';
        started++;
        if (ctx.index === 0)
          await new Promise<void>((resolve) =>
            ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
          );
        else await stopped;
        abortedWhenRead.push(ctx.signal.aborted);
        throw new Error('stopped');
      },
    });
    const yard = createSwitchyard({
      jobs: [simpleJob('stops', waits, 3)],
      store,
      transports: [transport],
      logger: silentLogger,
    });
    const { jobId } = await yard.submit('stops', undefined);
    const first = new AbortController();
    const worker = yard.work({ signal: first.signal, waitMs: 20 });
    while (started < 3) await new Promise((r) => setTimeout(r, 5));
    stopping = true;
    first.abort();
    release();
    await worker;
    expect(abortedWhenRead).toEqual([true, true, true]);
    expect((await store.getStages(jobId))[0]).toMatchObject({ succeeded: 0, failed: 0 });
    const second = new AbortController();
    const again = yard.work({ signal: second.signal, waitMs: 20 });
    const view = await yard.waitFor(jobId, {
      signal: AbortSignal.timeout(10_000),
      pollIntervalMs: 20,
    });
    second.abort();
    await again;
    expect(view.status).toBe('succeeded');
    expect(view.stages[0]).toMatchObject({ succeeded: 3, failed: 0 });
    await yard.close();
  });
});

describe('engine: worker shutdown with a pack waiting for slots', () => {
  it('releases the tasks still waiting for a slot unstarted, their attempts not counted', async () => {
    const store = memoryStore();
    const transport = memoryTransport();
    const ran: number[] = [];
    let first = true;
    const slotHog = defineTask({
      name: 'slot-hog',
      input: z.object({ i: z.number() }),
      handler: async ({ i }, ctx) => {
        ran.push(i);
        // The first run holds the only slot until the worker stops.
        if (first) {
          first = false;
          await new Promise<void>((resolve) =>
            ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
          );
          throw new Error('stopped');
        }
        return i;
      },
    });
    const yard = createSwitchyard({
      jobs: [simpleJob('hog', slotHog, 3)],
      store,
      transports: [transport],
      logger: silentLogger,
      batching: { packTasks: 3 },
    });
    const { jobId } = await yard.submit('hog', undefined);
    const stop = new AbortController();
    const worker = yard.work({ concurrency: 1, signal: stop.signal, waitMs: 20 });
    while (ran.length < 1) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50));
    expect(ran).toHaveLength(1); // one slot: the pack's other two tasks wait
    stop.abort();
    await worker;
    expect(ran).toHaveLength(1);
    const again = new AbortController();
    const next = yard.work({ concurrency: 1, signal: again.signal, waitMs: 20 });
    const view = await yard.waitFor(jobId, { pollIntervalMs: 20 });
    again.abort();
    await next;
    expect(view.status).toBe('succeeded');
    expect(ran).toHaveLength(4);
    // The interrupted task counts its attempt; the two that never started do not.
    const attempts = (await store.listTasks(jobId)).tasks.map((t) => t.attempts);
    expect(attempts.filter((a) => a === 2)).toHaveLength(1);
    expect(attempts.filter((a) => a === 1)).toHaveLength(2);
    await yard.close();
  });
});

describe('engine: metrics compare paths', () => {
  it('reports each path separately', async () => {
    const store = memoryStore();
    const a = memoryTransport({ name: 'a' });
    const b = memoryTransport({ name: 'b' });
    const yard = createSwitchyard({
      jobs: [helloWorld],
      store,
      transports: { a, b },
      logger: silentLogger,
      reconcile: { intervalMs: 0 },
    });
    const controller = new AbortController();
    const working = yard.work({ signal: controller.signal, waitMs: 20 });
    const j1 = await yard.submit('hello_world', { n: 10, workMs: 0 }, { transport: 'a' });
    const j2 = await yard.submit('hello_world', { n: 20, workMs: 0 }, { transport: 'b' });
    await yard.waitFor(j1.jobId);
    await yard.waitFor(j2.jobId);
    const { transports: paths } = await yard.metrics();
    expect(paths.find((p) => p.transport === 'a')).toMatchObject({
      jobs: { succeeded: 1 },
      tasks: { total: 20 },
    });
    expect(paths.find((p) => p.transport === 'b')).toMatchObject({
      jobs: { succeeded: 1 },
      tasks: { total: 40 },
    });
    expect((await yard.getJob(j2.jobId))?.transport).toBe('b');
    controller.abort();
    await working;
    await yard.close();
  });
});

describe('engine: fan-outs that cannot succeed', () => {
  const noop = defineTask({ name: 'noop', handler: (input: unknown) => input });

  it('fails the job at once when a fan-out yields a value JSON cannot carry', async () => {
    const job = defineJob({
      name: 'bigint-fanout',
      stages: [stage({ name: 'bad', task: noop, fanOut: () => [{ ok: 1 }, { n: 10n }] })],
    });
    const h = startYards([job]);
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('bigint-fanout', undefined);
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.status).toBe('failed');
    expect(view.error).toMatchObject({
      code: 'NOT_SERIALIZABLE',
      message: expect.stringContaining('fan-out of stage "bad" failed'),
    });
  });

  it('fans out from sync and async generators across chunks, every item once', async () => {
    const seen = new Map<string, number[]>();
    const record = defineTask({
      name: 'record',
      input: z.object({ from: z.string(), i: z.number() }),
      handler: ({ from, i }) => {
        seen.set(from, [...(seen.get(from) ?? []), i]);
      },
    });
    const n = 2_345;
    const job = defineJob({
      name: 'generated',
      stages: [
        stage({
          name: 'sync',
          task: record,
          *fanOut() {
            for (let i = 0; i < n; i++) yield { from: 'sync', i };
          },
        }),
        stage({
          name: 'async',
          task: record,
          async *fanOut() {
            for (let i = 0; i < n; i++) {
              if (i % 500 === 0) await new Promise((r) => setTimeout(r, 1));
              yield { from: 'async', i };
            }
          },
        }),
      ],
    });
    const h = startYards([job], { batching: { chunkSize: 1000 } });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('generated', undefined);
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.status).toBe('succeeded');
    expect(view.stages.map((s) => s.succeeded)).toEqual([n, n]);
    for (const from of ['sync', 'async'])
      expect([...(seen.get(from) ?? [])].sort((a, b) => a - b)).toEqual(
        Array.from({ length: n }, (_, i) => i),
      );
  });

  it('fails the job when its fan-out throws mid-way through the items, naming the stage', async () => {
    const job = defineJob({
      name: 'breaks-midway',
      stages: [
        stage({
          name: 'gen',
          task: noop,
          *fanOut() {
            for (let i = 0; i < 2_500; i++) {
              if (i === 2_100) throw new Error(`broke at ${i}`);
              yield { i };
            }
          },
        }),
      ],
    });
    const h = startYards([job], {
      retry: { initialDelayMs: 5, maxDelayMs: 20 },
      batching: { chunkSize: 1000 },
    });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('breaks-midway', undefined);
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.status).toBe('failed');
    expect(view.error?.message).toBe('fan-out of stage "gen" failed: broke at 2100');
  });

  it('retries a throwing fan-out with backoff, then fails the job naming the stage', async () => {
    let calls = 0;
    const job = defineJob({
      name: 'throwing-fanout',
      stages: [
        stage({
          name: 'flaky',
          task: noop,
          fanOut: () => {
            calls++;
            throw new Error('upstream unavailable');
          },
        }),
      ],
    });
    const h = startYards([job], { retry: { initialDelayMs: 5, maxDelayMs: 20 } });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('throwing-fanout', undefined);
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.status).toBe('failed');
    expect(view.error?.message).toBe('fan-out of stage "flaky" failed: upstream unavailable');
    expect(calls).toBe(5);
  });
});
