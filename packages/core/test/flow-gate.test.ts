import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { decodeEnvelope, type TaskEnvelope } from '../src/envelope.js';
import {
  createSwitchyard,
  defineJob,
  defineTask,
  memoryStore,
  memoryTransport,
  type Switchyard,
  silentLogger,
  stage,
  ValidationError,
} from '../src/index.js';
import type { Store } from '../src/store.js';
import type { QueueKind, ReceivedMessage, Transport } from '../src/transport.js';

describe('defineTask: concurrency and rateLimit', () => {
  const base = { name: 'limited', handler: (x: { t: string }) => x.t };
  const message = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(TypeError);
      return (err as Error).message;
    }
    throw new Error('expected a TypeError');
  };

  it('accepts limits with and without keys, frozen', () => {
    const task = defineTask({
      ...base,
      concurrency: { limit: 5, key: (input) => input.t },
      rateLimit: { limit: 100, periodMs: 1000 },
    });
    expect(task.concurrency?.limit).toBe(5);
    expect(task.concurrency?.key?.({ t: 'acme' })).toBe('acme');
    expect(task.rateLimit).toEqual({ limit: 100, periodMs: 1000 });
    expect(Object.isFrozen(task.concurrency)).toBe(true);
  });

  it.each([
    [
      { concurrency: { limit: 0 } },
      '"concurrency.limit" must be an integer from 1 to 100000 (got 0)',
    ],
    [{ concurrency: { limit: 2.5 } }, '"concurrency.limit"'],
    [{ concurrency: { limit: '5' } }, '"concurrency.limit"'],
    [{ concurrency: 5 }, '"concurrency" must be an object { limit, key? }'],
    [{ concurrency: { limit: 5, key: 'tenant' } }, '"concurrency.key" must be a function'],
    [{ rateLimit: { limit: 10 } }, '"rateLimit.periodMs" must be an integer from 1 to 86400000'],
    [
      { rateLimit: { limit: 10_001, periodMs: 1000 } },
      '"rateLimit.limit" must be an integer from 1 to 10000',
    ],
    [{ rateLimit: { limit: 1, periodMs: 1000, key: 3 } }, '"rateLimit.key" must be a function'],
  ])('rejects %j, naming the field', (limits, expected) => {
    expect(message(() => defineTask({ ...base, ...(limits as object) }))).toContain(expected);
    expect(message(() => defineTask({ ...base, ...(limits as object) }))).toContain(
      'task "limited"',
    );
  });
});

describe('createSwitchyard: flow control options', () => {
  const limited = defineTask({ name: 'limited', concurrency: { limit: 1 }, handler: () => 1 });
  const job = defineJob({
    name: 'limited',
    stages: [stage({ name: 's', task: limited, fanOut: () => [1] })],
  });
  const field = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      return (err as ValidationError).issues?.[0]?.path;
    }
    throw new Error('expected a ValidationError');
  };

  it('needs a store with flow control for a limited task', () => {
    const bare: Store = new Proxy(memoryStore(), {
      get: (target, prop) => (prop === 'admitTask' ? undefined : Reflect.get(target, prop, target)),
    });
    expect(
      field(() => createSwitchyard({ jobs: [job], store: bare, transports: [memoryTransport()] })),
    ).toBe('store');
  });

  it.each([
    [{ slotLeaseMs: 100 }, 'flowControl.slotLeaseMs'],
    [{ slotLeaseMs: 1000.5 }, 'flowControl.slotLeaseMs'],
    [{ maxWaitMs: 0 }, 'flowControl.maxWaitMs'],
  ])('rejects flowControl %j', (flowControl, path) => {
    expect(
      field(() =>
        createSwitchyard({
          jobs: [job],
          store: memoryStore(),
          transports: [memoryTransport()],
          flowControl,
        }),
      ),
    ).toBe(path);
  });
});

describe('flow control through handle()', () => {
  let yard: Switchyard | undefined;
  afterEach(async () => {
    await yard?.close();
    yard = undefined;
  });

  const receive = (t: Transport, queue: QueueKind) =>
    t.receive(queue, { maxMessages: 10, visibilityTimeoutMs: 5000 });
  /** Hands a received message to the yard and settles it as the yard says. */
  const handle = async (t: Transport, m: ReceivedMessage) => {
    const action = await yard!.handle(m.body, { deliveryCount: m.deliveryCount, maxDeliveries: 2 });
    await t.settle([{ ...action, message: m }]);
    return action;
  };
  async function until<T>(fn: () => Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < 400; i++) {
      const v = await fn();
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('timed out');
  }

  it('defers a task over its key limit as a fresh delayed message, then runs it once', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const runs: number[] = [];
    const task = defineTask({
      name: 'per-tenant',
      input: z.object({ i: z.number(), tenant: z.string() }),
      concurrency: { limit: 1, key: (input) => input.tenant },
      handler: async ({ i }, ctx) => {
        runs.push(ctx.attempt);
        if (i === 0) await gate;
        return i;
      },
    });
    const job = defineJob({
      name: 'tenants',
      stages: [
        stage({ name: 'calls', task, fanOut: () => [0, 1].map((i) => ({ i, tenant: 'acme' })) }),
      ],
    });
    const transport = memoryTransport({ visibilityTimeoutMs: 5000 });
    yard = createSwitchyard({
      jobs: [job],
      store: memoryStore(),
      transports: [transport],
      logger: silentLogger,
      flowControl: { maxWaitMs: 50 },
    });
    const { jobId } = await yard.submit('tenants', undefined);
    for (const m of await receive(transport, 'stage')) await handle(transport, m);
    const [first, second] = await receive(transport, 'task');
    const running = handle(transport, first!);
    await until(async () => (runs.length === 1 ? true : undefined));
    // The second task's key is full: its message is completed and a delayed copy sent.
    expect(await handle(transport, second!)).toEqual({ action: 'complete' });
    const view = await yard.getJob(jobId);
    expect(view?.stages[0]?.waiting).toEqual({ concurrency: 1, rateLimit: 0 });
    const copy = await until(async () => (await receive(transport, 'task'))[0]);
    expect(copy.deliveryCount).toBe(1);
    const envelope = decodeEnvelope(copy.body) as TaskEnvelope;
    expect(envelope).toMatchObject({ attempts: 0, deferrals: 1, input: { i: 1, tenant: 'acme' } });
    // Still full: deferred again, with one more deferral.
    expect(await handle(transport, copy)).toEqual({ action: 'complete' });
    release();
    expect(await running).toEqual({ action: 'complete' });
    const again = await until(async () => (await receive(transport, 'task'))[0]);
    expect((decodeEnvelope(again.body) as TaskEnvelope).deferrals).toBe(2);
    expect(await handle(transport, again)).toEqual({ action: 'complete' });
    expect(runs).toEqual([1, 1]);
    const done = await yard.getJob(jobId);
    // The last task finished the job (it has no finalize): nothing waits any more.
    expect(done).toMatchObject({ status: 'succeeded', stages: [{ succeeded: 2 }] });
    expect(done?.stages[0]?.waiting).toBeUndefined();
    const tasks = (await yard.listTasks(jobId)).tasks;
    expect(tasks.map((t) => t.attempts)).toEqual([1, 1]);
  });

  it('poisons a task whose key function fails, naming the field', async () => {
    const task = defineTask({
      name: 'bad-key',
      concurrency: { limit: 1, key: (input: { tenant?: string }) => input.tenant as string },
      handler: () => 1,
    });
    const job = defineJob({
      name: 'bad-key',
      stages: [stage({ name: 'calls', task, fanOut: () => [{}] })],
    });
    const transport = memoryTransport({ visibilityTimeoutMs: 5000 });
    yard = createSwitchyard({
      jobs: [job],
      store: memoryStore(),
      transports: [transport],
      logger: silentLogger,
    });
    const { jobId } = await yard.submit('bad-key', undefined);
    for (const m of await receive(transport, 'stage')) await handle(transport, m);
    const [m] = await receive(transport, 'task');
    const action = await handle(transport, m!);
    expect(action).toMatchObject({ action: 'deadLetter', reason: 'InvalidFlowKey' });
    const [failed] = (await yard.listTasks(jobId)).tasks;
    expect(failed?.status).toBe('failed');
    expect(failed?.error?.message).toContain('concurrency.key must return a string');
  });
});
