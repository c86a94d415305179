import { describe, expect, it } from 'vitest';
import { AbortGroup } from '../../src/engine/tasks/handler.js';
import { type TurnWait, waitForTurn } from '../../src/engine/tasks/slot-turn.js';
import type { HeldMessage } from '../../src/engine/worker/slots.js';
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
