import { describe, expect, it } from 'vitest';
import { AbortGroup } from '../../src/engine/tasks/handler.js';
import { PackTurns, type TurnWait, waitForTurn } from '../../src/engine/tasks/slot-turn.js';
import { type HeldMessage, TaskSlots } from '../../src/engine/worker/slots.js';
import { CancelWatch } from '../../src/operations/cancel-watch.js';

/** A wait for a turn that `release()` gives, counting the slots handed back. */
function turnWait(overrides: Partial<TurnWait> = {}) {
  let release!: () => void;
  const turn = new Promise<void>((resolve) => {
    release = resolve;
  });
  let ended = 0;
  const held = { handlerEnded: () => void ended++ } as unknown as HeldMessage;
  const cancels = new CancelWatch({ store: { cancelledJobs: async () => [] }, intervalMs: 60_000 });
  const wait: TurnWait = {
    held,
    jobId: 'job',
    attempt: 3,
    group: new AbortGroup(new AbortController().signal),
    cancels,
    ...overrides,
  };
  return { turn, wait, release, cancels, ended: () => ended };
}

describe('waitForTurn', () => {
  it('lets the task start on its turn, keeping the slot it was given', async () => {
    const { turn, wait, release, ended } = turnWait();
    const waiting = waitForTurn(turn, wait);
    release();
    expect(await waiting).toBeUndefined();
    expect(ended()).toBe(0);
  });

  it('releases the task unstarted when the worker stopped meanwhile, its attempt not counted', async () => {
    const stop = new AbortController();
    const { turn, wait, release, ended } = turnWait({ group: new AbortGroup(stop.signal) });
    const waiting = waitForTurn(turn, wait);
    stop.abort();
    release();
    expect(await waiting).toEqual({
      action: 'retry',
      delayMs: 0,
      reason: 'worker shutting down',
      attempt: 2,
    });
    expect(ended()).toBe(1);
  });

  it('settles the task as done when its job was cancelled while it waited', async () => {
    const { turn, wait, release, cancels, ended } = turnWait();
    const waiting = waitForTurn(turn, wait);
    await cancels.abort('job');
    release();
    expect(await waiting).toEqual({ action: 'complete' });
    expect(ended()).toBe(1);
  });
});

/** A pack of `tasks` tasks held by a worker of `capacity` slots, its turns taken in order. */
function pack(capacity: number, tasks: number, stop = new AbortController()) {
  const slots = new TaskSlots({
    capacity,
    expectedPerMessage: tasks,
    prefetch: 0,
    freed: () => {},
  });
  const held = slots.received();
  held.holds(tasks);
  const cancels = new CancelWatch({ store: { cancelledJobs: async () => [] }, intervalMs: 60_000 });
  const turns = new PackTurns({ held, jobId: 'job', group: new AbortGroup(stop.signal), cancels });
  return { slots, held, turns, cancels, stop };
}

describe('PackTurns', () => {
  it('starts tasks at once while slots are free, then one per slot given back, in order', async () => {
    const { slots, turns } = pack(2, 4);
    expect(turns.take()).toBe('start');
    expect(turns.take()).toBe('start');
    const third = turns.take();
    expect(third).toBeInstanceOf(Promise);
    let started = false;
    void (third as Promise<string>).then(() => {
      started = true;
    });
    await Promise.resolve();
    expect(started).toBe(false);
    slots.leave();
    expect(await third).toBe('start');
    turns.end();
  });

  it('releases the rest of the pack unstarted once the worker stopped, giving the slot back', async () => {
    const { slots, turns, stop } = pack(1, 3);
    expect(turns.take()).toBe('start');
    const second = turns.take() as Promise<string>;
    stop.abort();
    slots.leave();
    expect(await second).toBe('stopped');
    // The slot it was handed went back: the next task of another message starts at once.
    expect(slots.enter('other')).toBeUndefined();
    // The pack's last task does not wait for a slot it would only give back.
    expect(turns.take()).toBe('stopped');
    turns.end();
  });

  it('starts nothing more once the worker stopped, even on a free slot', () => {
    const { slots, turns, stop } = pack(4, 3);
    expect(turns.take()).toBe('start');
    stop.abort();
    expect(turns.take()).toBe('stopped');
    expect(turns.take()).toBe('stopped');
    // It took no slot for them: three of the four are free.
    for (let i = 0; i < 3; i++) expect(slots.enter('other')).toBeUndefined();
    expect(slots.enter('other')).toBeInstanceOf(Promise);
    turns.end();
  });

  it('settles the rest of the pack as done once its job was cancelled during a wait', async () => {
    const { slots, turns, cancels } = pack(1, 3);
    expect(turns.take()).toBe('start');
    const second = turns.take() as Promise<string>;
    await cancels.abort('job');
    slots.leave();
    expect(await second).toBe('cancelled');
    expect(turns.take()).toBe('cancelled');
    turns.end();
  });

  it('starts nothing more once its job is cancelled after a wait, even on a free slot', async () => {
    const { slots, turns, cancels } = pack(1, 4);
    expect(turns.take()).toBe('start');
    const second = turns.take() as Promise<string>;
    slots.leave();
    expect(await second).toBe('start');
    // The cancel comes while the pack's second task runs; its slot then comes free.
    await cancels.abort('job');
    slots.leave();
    expect(turns.take()).toBe('cancelled');
    expect(turns.take()).toBe('cancelled');
    turns.end();
  });
});
