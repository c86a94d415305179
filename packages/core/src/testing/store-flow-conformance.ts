/**
 * The part of the store conformance suite about flow control: key slots under leases, rate limits
 * over a sliding window, the waiting marks and their counts. Run by {@link storeConformance} for
 * every store that offers {@link FlowControlCapability}.
 * @module
 */
import { expect, it } from 'vitest';
import { taskId } from '../ids.js';
import type {
  FlowAdmission,
  FlowControlCapability,
  RateRequest,
  SlotRequest,
  Store,
} from '../store.js';

export function storeFlowConformance(getStore: () => Store, timeout: number): void {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const flow = (): Store & FlowControlCapability => {
    const store = getStore();
    expect(typeof store.admitTask, 'the store offers flow control').toBe('function');
    return store as Store & FlowControlCapability;
  };
  const ref = (jobId: string, stage: number, index: number) => ({
    jobId,
    stage,
    index,
    taskId: taskId(jobId, stage, index),
  });
  /** A running job whose stage 0 holds `count` pending tasks. */
  async function running(jobId: string, count: number, transport = 'memory') {
    const store = getStore();
    await store.createJob({ id: jobId, name: 'flow', params: {}, transport, stageCount: 1 });
    await store.startStage(jobId, 0, 's0');
    await store.insertTasks(
      jobId,
      0,
      Array.from({ length: count }, (_, index) => ({ index, input: { index } })),
    );
    await store.sealStage(jobId, 0, count);
  }
  let holders = 0;
  const slot = (key: string, limit: number, leaseMs = 60_000, scope = 'geocode'): SlotRequest => ({
    scope,
    key,
    limit,
    holder: `holder-${++holders}`,
    leaseMs,
  });
  const rate = (key: string, limit: number, periodMs = 60_000): RateRequest => ({
    scope: 'geocode',
    key,
    limit,
    periodMs,
  });
  const admit = (
    jobId: string,
    index: number,
    needs: { slot?: SlotRequest; rate?: RateRequest },
    waitMs = 0,
  ) => flow().admitTask({ ...ref(jobId, 0, index), ...needs, waitMs } satisfies FlowAdmission);

  it('grants at most `limit` slots of a key; a released slot is free again', {
    timeout,
  }, async () => {
    await running('fj-slots', 4);
    const a = slot('tenant-a', 2);
    const b = slot('tenant-a', 2);
    expect(await admit('fj-slots', 0, { slot: a })).toEqual({ outcome: 'admitted' });
    expect(await admit('fj-slots', 1, { slot: b })).toEqual({ outcome: 'admitted' });
    expect(await admit('fj-slots', 2, { slot: slot('tenant-a', 2) })).toEqual({
      outcome: 'concurrency',
    });
    // Another key, another scope: slots of their own.
    expect(await admit('fj-slots', 3, { slot: slot('tenant-b', 2) })).toEqual({
      outcome: 'admitted',
    });
    expect(await admit('fj-slots', 3, { slot: slot('tenant-a', 2, 60_000, 'other') })).toEqual({
      outcome: 'admitted',
    });
    await flow().releaseSlots([a]);
    expect(await admit('fj-slots', 2, { slot: slot('tenant-a', 2) })).toEqual({
      outcome: 'admitted',
    });
    // Releasing twice, or a slot never held, changes nothing.
    await flow().releaseSlots([a, { scope: 'geocode', key: 'nobody', holder: 'nobody' }]);
    expect(await admit('fj-slots', 0, { slot: slot('tenant-a', 2) })).toEqual({
      outcome: 'concurrency',
    });
  });

  it('admits exactly `limit` of many concurrent requests for one key', { timeout }, async () => {
    await running('fj-race', 12);
    const decisions = await Promise.all(
      Array.from({ length: 12 }, (_, i) => admit('fj-race', i, { slot: slot('hot', 3) })),
    );
    expect(decisions.filter((d) => d.outcome === 'admitted')).toHaveLength(3);
    expect(decisions.filter((d) => d.outcome === 'concurrency')).toHaveLength(9);
  });

  it('frees the slot of a holder whose lease ran out; a renewal keeps it', {
    timeout,
  }, async () => {
    await running('fj-lease', 3);
    const dying = slot('k', 1, 50);
    expect(await admit('fj-lease', 0, { slot: dying })).toEqual({ outcome: 'admitted' });
    // Nobody renews it: within a little more than its lease, the key has a free slot again.
    let next = await admit('fj-lease', 1, { slot: slot('k', 1) });
    for (let i = 0; i < 200 && next.outcome !== 'admitted'; i++) {
      await sleep(25);
      next = await admit('fj-lease', 1, { slot: slot('k', 1) });
    }
    expect(next).toEqual({ outcome: 'admitted' });
    expect(await flow().renewSlots([dying], 60_000)).toEqual([]);

    const kept = slot('k2', 1, 300);
    expect(await admit('fj-lease', 2, { slot: kept })).toEqual({ outcome: 'admitted' });
    expect(await flow().renewSlots([kept], 60_000)).toEqual([kept.holder]);
    await sleep(500);
    expect(await admit('fj-lease', 1, { slot: slot('k2', 1) })).toEqual({
      outcome: 'concurrency',
    });
    await flow().releaseSlots([kept]);
    expect(await flow().renewSlots([kept], 60_000)).toEqual([]);
  });

  it('allows `limit` starts per key in any window of `periodMs`', { timeout }, async () => {
    await running('fj-rate', 10);
    const decisions = await Promise.all(
      Array.from({ length: 10 }, (_, i) => admit('fj-rate', i, { rate: rate('api', 3) })),
    );
    expect(decisions.filter((d) => d.outcome === 'admitted')).toHaveLength(3);
    for (const d of decisions.filter((d) => d.outcome !== 'admitted')) {
      expect(d.outcome).toBe('rateLimit');
      const after = (d as { retryAfterMs: number }).retryAfterMs;
      expect(after).toBeGreaterThan(0);
      expect(after).toBeLessThanOrEqual(60_000);
    }
    // Another key has a window of its own.
    expect(await admit('fj-rate', 9, { rate: rate('other', 3) })).toEqual({ outcome: 'admitted' });
  });

  it('frees a start once the window slides past it', { timeout }, async () => {
    await running('fj-window', 3);
    expect(await admit('fj-window', 0, { rate: rate('w', 1, 150) })).toEqual({
      outcome: 'admitted',
    });
    let next = await admit('fj-window', 1, { rate: rate('w', 1, 150) });
    const refused = next;
    for (let i = 0; i < 200 && next.outcome !== 'admitted'; i++) {
      await sleep(25);
      next = await admit('fj-window', 1, { rate: rate('w', 1, 150) });
    }
    expect(next).toEqual({ outcome: 'admitted' });
    if (refused.outcome === 'rateLimit') expect(refused.retryAfterMs).toBeLessThanOrEqual(150);
  });

  it('takes the slot and the start together, or neither', { timeout }, async () => {
    await running('fj-both', 3);
    expect(await admit('fj-both', 0, { rate: rate('both', 1) })).toEqual({ outcome: 'admitted' });
    // The rate limit refuses: the free slot is not taken.
    const refused = await admit('fj-both', 1, { slot: slot('both', 1), rate: rate('both', 1) });
    expect(refused.outcome).toBe('rateLimit');
    expect(await admit('fj-both', 2, { slot: slot('both', 1) })).toEqual({ outcome: 'admitted' });
    // The slot refuses: no start is taken.
    expect(await admit('fj-both', 1, { slot: slot('both', 1), rate: rate('fresh', 1) })).toEqual({
      outcome: 'concurrency',
    });
    expect(await admit('fj-both', 1, { rate: rate('fresh', 1) })).toEqual({
      outcome: 'admitted',
    });
  });

  it('takes nothing for a task that may not run', { timeout }, async () => {
    const store = getStore();
    await running('fj-gone', 2);
    const limited = () => ({ slot: slot('gone', 1), rate: rate('gone', 1) });
    // Missing task, finished task, cancelled job.
    expect(await flow().admitTask({ ...ref('fj-gone', 0, 7), ...limited(), waitMs: 0 })).toEqual({
      outcome: 'not-runnable',
    });
    await store.completeTasks([{ ...ref('fj-gone', 0, 0), status: 'succeeded', result: 1 }]);
    expect(await admit('fj-gone', 0, limited())).toEqual({ outcome: 'not-runnable' });
    await store.cancelJob('fj-gone');
    expect(await admit('fj-gone', 1, limited())).toEqual({ outcome: 'not-runnable' });
    await running('fj-gone-2', 1);
    expect(await admit('fj-gone-2', 0, limited())).toEqual({ outcome: 'admitted' });
  });

  it('marks refused tasks waiting until admitted, and counts them', { timeout }, async () => {
    const store = getStore();
    await running('fj-wait', 4, 'pathA');
    const held = slot('w', 1);
    const before = Date.now();
    expect(await admit('fj-wait', 0, { slot: held })).toEqual({ outcome: 'admitted' });
    expect(await admit('fj-wait', 1, { slot: slot('w', 1) }, 5000)).toEqual({
      outcome: 'concurrency',
    });
    expect((await admit('fj-wait', 2, { rate: rate('wr', 1) }, 0)).outcome).toBe('admitted');
    const limitedRate = await admit('fj-wait', 3, { rate: rate('wr', 1) }, 5000);
    expect(limitedRate.outcome).toBe('rateLimit');
    expect(await flow().waitingTasks('fj-wait')).toEqual([
      { stage: 0, concurrency: 1, rateLimit: 1 },
    ]);
    expect(await flow().waitingTasks('nope')).toEqual([]);
    const path = (await store.metrics()).find((m) => m.transport === 'pathA');
    expect(path?.waiting).toEqual({ concurrency: 1, rateLimit: 1 });
    // The lost-message clock starts when the deferred message is due.
    const waitingTask = await store.getTask(taskId('fj-wait', 0, 1));
    expect(waitingTask!.updatedAt.getTime()).toBeGreaterThanOrEqual(before + 4000);

    await flow().releaseSlots([held]);
    expect(await admit('fj-wait', 1, { slot: slot('w', 1) })).toEqual({ outcome: 'admitted' });
    expect(await flow().waitingTasks('fj-wait')).toEqual([
      { stage: 0, concurrency: 0, rateLimit: 1 },
    ]);
    // A task that ends while marked is no longer counted.
    await store.completeTasks([{ ...ref('fj-wait', 0, 3), status: 'succeeded', result: 3 }]);
    expect(await flow().waitingTasks('fj-wait')).toEqual([]);
    const after = (await store.metrics()).find((m) => m.transport === 'pathA');
    expect(after?.waiting).toEqual({ concurrency: 0, rateLimit: 0 });
  });
}
