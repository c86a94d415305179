import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { type StorageQueueTransport, storageQueueTransport } from '../src/index.js';
import { PutWake } from '../src/put-wake.js';
import { connectionString, deleteQueues, uniqueName } from './helpers.js';

describe('PutWake (no backend needed)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ends a sleep when a message is put, and says so', async () => {
    vi.useFakeTimers();
    const wake = new PutWake();
    const sleeping = wake.sleep(60_000, new AbortController().signal);
    wake.put(0);
    await expect(sleeping).resolves.toBe(true);
  });

  it('ends a sleep unwoken when its time is up or the signal aborts', async () => {
    vi.useFakeTimers();
    const wake = new PutWake();
    const timedOut = wake.sleep(100, new AbortController().signal);
    await vi.advanceTimersByTimeAsync(100);
    await expect(timedOut).resolves.toBe(false);
    const abort = new AbortController();
    const aborted = wake.sleep(60_000, abort.signal);
    abort.abort();
    await expect(aborted).resolves.toBe(false);
  });

  it('wakes for a delayed put when it becomes visible, once for the earliest of several', async () => {
    vi.useFakeTimers();
    const wake = new PutWake();
    let woken = 0;
    const sleeper = async () => {
      if (await wake.sleep(60_000, new AbortController().signal)) woken++;
    };
    const first = sleeper();
    wake.put(5_000);
    wake.put(2_000);
    wake.put(9_000); // later than the pending wake-up: covered by it
    await vi.advanceTimersByTimeAsync(1_999);
    expect(woken).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    await first;
    expect(woken).toBe(1);
    // The pending wake-up fired: a sleeper started now is not woken by the puts already covered.
    const second = wake.sleep(10_000, new AbortController().signal);
    await vi.advanceTimersByTimeAsync(10_000);
    await expect(second).resolves.toBe(false);
  });

  it('drops a pending delayed wake-up on close', async () => {
    vi.useFakeTimers();
    const wake = new PutWake();
    wake.put(1_000);
    wake.close();
    const sleeping = wake.sleep(5_000, new AbortController().signal);
    await vi.advanceTimersByTimeAsync(1_000);
    wake.put(0);
    await expect(sleeping).resolves.toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});

const prefix = uniqueName('w');

describe.skipIf(!connectionString)('a queue without lanes on Azurite', () => {
  let opened: StorageQueueTransport[] = [];
  afterEach(async () => {
    await Promise.all(opened.map((t) => t.close()));
    opened = [];
  });
  afterAll(() => deleteQueues(prefix));

  function gets(t: StorageQueueTransport): number {
    return t.usage().operations.getMessages ?? 0;
  }

  it('polls at once when this transport sends to the queue a receive is backed off on', {
    timeout: 20_000,
  }, async () => {
    const base = uniqueName(prefix);
    const t = storageQueueTransport({
      connectionString,
      queues: { stage: `${base}-s`, task: `${base}-t` },
    });
    opened.push(t);
    await t.ping();
    const before = gets(t);
    const waiting = t.receive('stage', { maxMessages: 1, waitMs: 15_000 });
    // Six empty polls: the receive has slept 50 + 100 + 200 + 400 + 800 ms and now sleeps 1 s.
    while (gets(t) < before + 6) await new Promise((r) => setTimeout(r, 5));
    const sentAt = Date.now();
    await t.send('stage', [{ body: 'advance' }]);
    const [m] = await waiting;
    expect(m?.body).toBe('advance');
    // Without the wake-up the receive would poll again only after its 1 s sleep.
    expect(Date.now() - sentAt).toBeLessThan(500);
    expect(gets(t) - before).toBe(7);
    await t.settle([{ message: m!, action: 'complete' }]);
  });
});
