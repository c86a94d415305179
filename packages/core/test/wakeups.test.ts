import { describe, expect, it } from 'vitest';
import { Wakeups } from '../src/util/wakeups.js';

/** Whether `promise` has settled once the microtasks queued now have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => {
    done = true;
  });
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('Wakeups', () => {
  it('wakes every waiter of a key once, and no other key’s', async () => {
    const wakeups = new Wakeups<string>();
    const a1 = wakeups.next('a');
    const a2 = wakeups.next('a');
    const b = wakeups.next('b');
    wakeups.wake('a');
    expect(await settled(a1.promise)).toBe(true);
    expect(await settled(a2.promise)).toBe(true);
    expect(await settled(b.promise)).toBe(false);
    // A wake-up is one-shot: the next one of the key must be taken again.
    const again = wakeups.next('a');
    expect(await settled(again.promise)).toBe(false);
    wakeups.wake('a');
    expect(await settled(again.promise)).toBe(true);
  });

  it('forgets a cancelled waiter, and a wake-up nobody waits for', async () => {
    const wakeups = new Wakeups<string>();
    const gone = wakeups.next('a');
    gone.cancel();
    wakeups.wake('a');
    expect(await settled(gone.promise)).toBe(false);
    wakeups.wake('nobody');
    const later = wakeups.next('nobody');
    expect(await settled(later.promise)).toBe(false);
  });

  it('wakes every key’s waiters at once when told to (their owner is closing)', async () => {
    const wakeups = new Wakeups<string>();
    const a = wakeups.next('a');
    const b = wakeups.next('b');
    wakeups.wakeAll();
    expect(await settled(a.promise)).toBe(true);
    expect(await settled(b.promise)).toBe(true);
    // Cancelling a woken waiter is harmless.
    a.cancel();
    const again = wakeups.next('a');
    expect(await settled(again.promise)).toBe(false);
  });
});
