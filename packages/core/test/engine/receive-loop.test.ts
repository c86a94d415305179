import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { InboundMessage } from '../../src/engine/inbound.js';
import { AbortGroup } from '../../src/engine/tasks/handler.js';
import { receiveLoop } from '../../src/engine/worker/receive-loop.js';
import { memoryTransport } from '../../src/memory/memory-transport.js';
import type {
  QueueKind,
  ReceivedMessage,
  ReceiveOptions,
  SettlementAction,
} from '../../src/transport.js';
import { deferred, type FakeEngine, fakeEngine, RecordingTransport } from './fake-context.js';

interface LoopSpec {
  fake: FakeEngine;
  process: (message: InboundMessage) => Promise<SettlementAction>;
  capacity?: number;
  lockMs?: number;
  prefetch?: number;
  /** Receives take this long more (the transport is a network away). */
  roundTripMs?: number;
}

/** A transport whose receives take `ms` more, as a network round trip does. */
class DistantTransport extends RecordingTransport {
  constructor(
    inner: RecordingTransport['inner'],
    private readonly ms: number,
  ) {
    super(inner);
  }
  override async receive(queue: QueueKind, options: ReceiveOptions): Promise<ReceivedMessage[]> {
    await sleep(this.ms);
    return super.receive(queue, options);
  }
}

function startLoop({
  fake,
  process,
  capacity = 4,
  lockMs = 5000,
  prefetch = 0,
  roundTripMs,
}: LoopSpec) {
  const stop = new AbortController();
  const group = new AbortGroup(stop.signal);
  const target =
    roundTripMs === undefined
      ? fake.target
      : { ...fake.target, transport: new DistantTransport(fake.transport, roundTripMs) };
  const done = receiveLoop({
    target,
    queue: 'task',
    capacity,
    tasksPerMessage: 1,
    prefetch,
    receivers: 2,
    lockMs,
    waitMs: 20,
    stop: stop.signal,
    group,
    process: (m) => process(m),
    logger: fake.logger,
  });
  return { stop, group, done };
}

const send = (fake: FakeEngine, bodies: string[]) =>
  fake.transport.send(
    'task',
    bodies.map((body) => ({ body })),
  );

async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('receiveLoop', () => {
  it('processes and settles every message, then drains on stop', async () => {
    const fake = fakeEngine();
    const seen: string[] = [];
    await send(fake, ['a', 'b', 'c', 'd', 'e', 'f']);
    const loop = startLoop({
      fake,
      lockMs: 100,
      process: async (m) => {
        seen.push(m.body as string);
        return { action: 'complete' };
      },
    });
    await until(() => seen.length === 6);
    loop.stop.abort();
    await loop.done;
    expect(seen.sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    // Settled: none comes back once its lock would have run out.
    await sleep(150);
    expect(await fake.transport.receive('task', { maxMessages: 10, waitMs: 0 })).toEqual([]);
  });

  /**
   * A processor that takes a handler slot as the task runner does: `running` counts handlers,
   * `holding` messages dispatched and not yet finished.
   */
  function slotted(handlerMs: () => Promise<unknown>) {
    const seen = { running: 0, mostRunning: 0, holding: 0, mostHolding: 0, finished: 0 };
    const process = async (m: InboundMessage): Promise<SettlementAction> => {
      seen.mostHolding = Math.max(seen.mostHolding, ++seen.holding);
      const turn = m.held?.handlerStarting();
      if (turn) await turn;
      seen.mostRunning = Math.max(seen.mostRunning, ++seen.running);
      await handlerMs();
      seen.running--;
      m.held?.handlerEnded();
      seen.holding--;
      seen.finished++;
      return { action: 'complete' };
    };
    return { seen, process };
  }

  it('runs at most `capacity` handlers at once, and holds no more messages without prefetch', async () => {
    const fake = fakeEngine();
    await send(
      fake,
      Array.from({ length: 8 }, (_, i) => `m${i}`),
    );
    const { seen, process } = slotted(() => sleep(30));
    const loop = startLoop({ fake, capacity: 2, process });
    await until(() => seen.finished === 8);
    loop.stop.abort();
    await loop.done;
    expect(seen.mostRunning).toBe(2);
    expect(seen.mostHolding).toBe(2);
  });

  it('prefetches for short handlers: holds more tasks than slots, never runs more than `capacity`', async () => {
    const fake = fakeEngine();
    for (let i = 0; i < 3; i++)
      await send(
        fake,
        Array.from({ length: 1000 }, (_, j) => `m${i}.${j}`),
      );
    const { seen, process } = slotted(() => Promise.resolve());
    const loop = startLoop({ fake, capacity: 2, prefetch: 50, roundTripMs: 10, process });
    await until(() => seen.finished === 3000, 10_000);
    loop.stop.abort();
    await loop.done;
    expect(seen.mostRunning).toBe(2);
    expect(seen.mostHolding).toBeGreaterThan(2);
    expect(seen.mostHolding).toBeLessThanOrEqual(2 + 50);
  });

  it('does not prefetch for handlers slower than a receive: the rest stays in the queue for other workers', async () => {
    const fake = fakeEngine();
    await send(
      fake,
      Array.from({ length: 8 }, (_, i) => `m${i}`),
    );
    const { seen, process } = slotted(() => sleep(300));
    const loop = startLoop({ fake, capacity: 2, prefetch: 50, roundTripMs: 10, process });
    await until(() => seen.finished === 8, 10_000);
    loop.stop.abort();
    await loop.done;
    expect(seen.mostRunning).toBe(2);
    expect(seen.mostHolding).toBe(2);
  });

  it('on stop, aborts the handlers and waits for the messages in flight to be settled', async () => {
    const fake = fakeEngine();
    await send(fake, ['slow']);
    const release = deferred<SettlementAction>();
    let started = false;
    const loop = startLoop({
      fake,
      lockMs: 100,
      process: () => {
        started = true;
        return release.promise;
      },
    });
    await until(() => started);
    loop.stop.abort();
    expect(loop.group.signal.aborted).toBe(true);
    let drained = false;
    void loop.done.then(() => (drained = true));
    await sleep(30);
    expect(drained).toBe(false);
    release.resolve({ action: 'complete' });
    await loop.done;
    await sleep(150);
    expect(await fake.transport.receive('task', { maxMessages: 10, waitMs: 0 })).toEqual([]);
  });

  it('settles each message as processing says: dead-letter, or retry with a new delivery', async () => {
    const fake = fakeEngine();
    await send(fake, ['poison', 'again']);
    const deliveries: [string, number][] = [];
    const loop = startLoop({
      fake,
      process: async (m) => {
        deliveries.push([m.body as string, m.deliveryCount]);
        if (m.body === 'poison') return { action: 'deadLetter', reason: 'Bad', description: 'no' };
        return m.deliveryCount === 1 ? { action: 'retry', delayMs: 0 } : { action: 'complete' };
      },
    });
    await until(() => deliveries.length === 3);
    loop.stop.abort();
    await loop.done;
    expect(deliveries.sort()).toEqual([
      ['again', 1],
      ['again', 2],
      ['poison', 1],
    ]);
    expect(await fake.transport.listDeadLetters('task')).toEqual([
      expect.objectContaining({ body: 'poison', reason: 'Bad', description: 'no' }),
    ]);
  });

  it('backs off and carries on after a failing receive', async () => {
    class FailingOnce extends RecordingTransport {
      failures = 1;
      override receive(queue: QueueKind, options: ReceiveOptions): Promise<ReceivedMessage[]> {
        if (this.failures-- > 0) return Promise.reject(new Error('network down'));
        return super.receive(queue, options);
      }
    }
    const fake = fakeEngine();
    const flaky = new FailingOnce(memoryTransport());
    const target = { ...fake.target, transport: flaky };
    await flaky.send('task', [{ body: 'after' }]);
    const seen: string[] = [];
    const stop = new AbortController();
    const done = receiveLoop({
      target,
      queue: 'task',
      capacity: 1,
      tasksPerMessage: 1,
      prefetch: 0,
      receivers: 1,
      lockMs: 5000,
      waitMs: 20,
      stop: stop.signal,
      group: new AbortGroup(stop.signal),
      process: async (m) => {
        seen.push(m.body as string);
        return { action: 'complete' };
      },
      logger: fake.logger,
    });
    await until(() => seen.length === 1);
    stop.abort();
    await done;
    expect(fake.logger.lines).toContainEqual(
      expect.objectContaining({
        level: 'error',
        message: 'receive failed; backing off',
        fields: expect.objectContaining({ error: 'network down', backoffMs: 250 }),
      }),
    );
  });
});
