import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LockRenewal } from '../../src/engine/worker/lock-renewal.js';
import { memoryTransport } from '../../src/memory/memory-transport.js';
import type { ReceivedMessage, Transport } from '../../src/transport.js';
import { deferred, RecordingTransport } from './fake-context.js';

type Gate = ReturnType<typeof deferred<void>>;

/** A transport whose lock extensions are recorded and end only when the test says so. */
class GatedLocks extends RecordingTransport {
  readonly extensions: {
    message: ReceivedMessage;
    ms: number;
    done: Gate;
  }[] = [];
  constructor() {
    super(memoryTransport());
  }
  override extendLock(message: ReceivedMessage, ms: number): Promise<void> {
    const done = deferred<void>();
    this.extensions.push({ message, ms, done });
    return done.promise;
  }
}

const message = (id: string): ReceivedMessage => ({
  queue: 'task',
  id,
  body: '{}',
  deliveryCount: 1,
});

describe('LockRenewal', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('extends a message held longer than a third of the lock by another lock duration', async () => {
    const transport = new GatedLocks();
    const locks = new LockRenewal(transport, 300);
    const m = message('a');
    locks.hold(m);
    await vi.advanceTimersByTimeAsync(100);
    expect(transport.extensions).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(transport.extensions.map((e) => [e.message, e.ms])).toEqual([[m, 300]]);
    locks.stop();
  });

  it('never has two extensions of one message in flight', async () => {
    const transport = new GatedLocks();
    const locks = new LockRenewal(transport, 300);
    const m = message('a');
    locks.hold(m);
    await vi.advanceTimersByTimeAsync(200);
    expect(transport.extensions).toHaveLength(1);
    // A slow backend: the extension is still running several ticks later.
    await vi.advanceTimersByTimeAsync(1000);
    expect(transport.extensions).toHaveLength(1);
    transport.extensions[0]!.done.resolve();
    await vi.advanceTimersByTimeAsync(100);
    expect(transport.extensions).toHaveLength(2);
    locks.stop();
  });

  it('extends each held message on its own clock, and none once released', async () => {
    const transport = new GatedLocks();
    const locks = new LockRenewal(transport, 300);
    const a = message('a');
    const b = message('b');
    locks.hold(a);
    await vi.advanceTimersByTimeAsync(100);
    locks.hold(b);
    expect(locks.size).toBe(2);
    await vi.advanceTimersByTimeAsync(100);
    expect(transport.extensions.map((e) => e.message.id)).toEqual(['a']);
    locks.release(b);
    expect(locks.size).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(transport.extensions.map((e) => e.message.id)).toEqual(['a']);
    locks.stop();
  });

  it('tries again after an extension fails, without an unhandled rejection', async () => {
    const transport = new GatedLocks();
    const locks = new LockRenewal(transport, 300);
    locks.hold(message('a'));
    await vi.advanceTimersByTimeAsync(200);
    transport.extensions[0]!.done.reject(new Error('lock lost'));
    await vi.advanceTimersByTimeAsync(200);
    expect(transport.extensions).toHaveLength(2);
    locks.stop();
  });

  it('stops cleanly: no timer left, no extension after stop', async () => {
    const transport = new GatedLocks();
    const before = vi.getTimerCount();
    const locks = new LockRenewal(transport, 300);
    expect(vi.getTimerCount()).toBe(before + 1);
    locks.hold(message('a'));
    locks.stop();
    expect(vi.getTimerCount()).toBe(before);
    await vi.advanceTimersByTimeAsync(2000);
    expect(transport.extensions).toHaveLength(0);
  });

  it('runs no timer for a transport that cannot extend locks', async () => {
    const inner = memoryTransport();
    const noExtend: Transport = {
      name: inner.name,
      limits: inner.limits,
      send: inner.send.bind(inner),
      receive: inner.receive.bind(inner),
      settle: inner.settle.bind(inner),
      close: inner.close.bind(inner),
    };
    const before = vi.getTimerCount();
    const locks = new LockRenewal(noExtend, 300);
    locks.hold(message('a'));
    expect(vi.getTimerCount()).toBe(before);
    locks.stop();
  });
});
