import { describe, expect, it, vi } from 'vitest';
import type { TaskEnvelope } from '../../src/envelope.js';
import type { Store } from '../../src/store.js';
import { doubleJob, type FakeEngine, fakeEngine, runningJob } from './fake-context.js';

/** A running job of `n` tasks whose stage the fan-out windowed at `window` (its first tasks released). */
async function windowed(fake: FakeEngine, n: number, window: number) {
  const jobId = await runningJob(
    fake,
    doubleJob,
    Array.from({ length: n }, (_, i) => i),
  );
  await fake.store.releaseTasks([{ jobId, stage: 0, window, fanOut: true }]);
  return jobId;
}

const sentIndexes = (fake: FakeEngine) =>
  (fake.transport.envelopes('task') as TaskEnvelope[]).map((e) =>
    Number(e.taskId.split('.').pop()),
  );

const done = (jobId: string, ...indexes: number[]) =>
  indexes.map((index) => ({
    jobId,
    stage: 0,
    index,
    taskId: `${jobId}.0.${index}`,
    status: 'succeeded' as const,
    result: index,
  }));

describe('TaskWindow', () => {
  it('releases and sends the next tasks of the stages whose tasks finished', async () => {
    const fake = fakeEngine({ batching: { window: 2 } });
    const jobId = await windowed(fake, 5, 2);
    await fake.store.completeTasks(done(jobId, 0, 1));
    fake.modules.window.freed([{ jobId, stage: 0 }]);
    await vi.waitFor(() => expect(sentIndexes(fake)).toEqual([2, 3]));
    // Asked again with nothing finished since: nothing more is sent.
    fake.modules.window.freed([{ jobId, stage: 0 }]);
    await new Promise((r) => setTimeout(r, 20));
    expect(sentIndexes(fake)).toEqual([2, 3]);
  });

  it('asks again after a failed release, until the store answers', async () => {
    const fake = fakeEngine({ batching: { window: 1 } });
    const jobId = await windowed(fake, 3, 1);
    await fake.store.completeTasks(done(jobId, 0));
    const release = fake.store.releaseTasks.bind(fake.store);
    let failures = 0;
    (fake.store as Store).releaseTasks = async (windows) => {
      if (failures++ === 0) throw new Error('store unavailable');
      return release(windows);
    };
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    try {
      fake.modules.window.freed([{ jobId, stage: 0 }]);
      await vi.waitFor(() => expect(failures).toBe(1));
      await vi.advanceTimersByTimeAsync(1000);
    } finally {
      vi.useRealTimers();
    }
    await vi.waitFor(() => expect(sentIndexes(fake)).toEqual([1]));
    expect(fake.logger.lines.some((l) => l.message.includes('could not release'))).toBe(true);
  });

  it('sweeps running jobs for stalled windows, and leaves unwindowed stages alone', async () => {
    const fake = fakeEngine({ batching: { window: 2 } });
    const stalled = await windowed(fake, 4, 2);
    // Its finished tasks' release was lost: nothing in flight will release the rest.
    await fake.store.completeTasks(done(stalled, 0, 1));
    const unwindowed = await runningJob(fake, doubleJob, [0, 1, 2]);
    expect(await fake.modules.window.sweep()).toBe(2);
    expect(sentIndexes(fake)).toEqual([2, 3]);
    expect((await fake.store.getStages(unwindowed))[0]?.released).toBeNull();
    expect(await fake.modules.window.sweep()).toBe(0);
  });

  it('takes the window from the job’s transport; `false` releases nothing', async () => {
    const fake = fakeEngine({ batching: { window: false } });
    expect(fake.modules.window.windowOf('memory')).toBeUndefined();
    const jobId = await windowed(fake, 4, 1);
    await fake.store.completeTasks(done(jobId, 0));
    expect(await fake.modules.window.sweep()).toBe(0);
    expect(sentIndexes(fake)).toEqual([]);
  });

  it('starts no release once closed', async () => {
    const fake = fakeEngine({ batching: { window: 2 } });
    const jobId = await windowed(fake, 4, 2);
    await fake.store.completeTasks(done(jobId, 0, 1));
    await fake.modules.window.close();
    fake.modules.window.freed([{ jobId, stage: 0 }]);
    await new Promise((r) => setTimeout(r, 20));
    expect(sentIndexes(fake)).toEqual([]);
  });
});
