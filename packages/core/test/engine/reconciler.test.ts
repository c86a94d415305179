import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TaskEnvelope } from '../../src/envelope.js';
import {
  createJob,
  fakeEngine,
  finishStage,
  runningJob,
  startStage,
  testJob,
} from './fake-context.js';

const twoStages = testJob({ name: 'two', stages: [{}, {}] });
/** Anything untouched for 1 ms counts as stuck. */
const stuckAfter = { olderThanMs: 1 };

describe('Reconciler', () => {
  it('re-drives each kind of stuck work and reports the counts', async () => {
    const fake = fakeEngine({ jobs: [twoStages] });
    const notStarted = await createJob(fake, { name: 'two', stageCount: 2 });
    const fanningOut = await runningJob(fake, twoStages, [1], { seal: false });
    const notAdvanced = await runningJob(fake, twoStages, [1, 2]);
    await finishStage(fake, { jobId: notAdvanced, stage: 0 });
    const notFinished = await runningJob(fake, twoStages, [1]);
    await finishStage(fake, { jobId: notFinished, stage: 0 });
    await startStage(fake, { jobId: notFinished, stage: 1, inputs: [1] });
    await finishStage(fake, { jobId: notFinished, stage: 1 });
    const lost = await runningJob(fake, twoStages, ['a', 'b', 'c']);
    await fake.store.retryTasks([
      {
        jobId: lost,
        stage: 0,
        index: 1,
        taskId: `${lost}.0.1`,
        error: { name: 'E', message: 'e' },
        attempt: 2,
      },
    ]);
    await sleep(5);

    const result = await fake.modules.reconciler('a').reconcile(stuckAfter);
    expect(result).toEqual({
      ran: true,
      redriven: {
        'job-not-started': 1,
        'fanout-incomplete': 1,
        'stage-not-advanced': 1,
        'finalize-not-done': 1,
        'task-message-lost': 3,
      },
      purged: { jobs: 0, tasks: 0 },
    });
    expect(fake.transport.stageMessages(notStarted)).toEqual([0]);
    expect(fake.transport.stageMessages(fanningOut)).toEqual([0]);
    expect(fake.transport.stageMessages(notAdvanced)).toEqual([1]);
    // The job has no finalize: the re-drive finishes it in place, with no message.
    expect(fake.transport.stageMessages(notFinished)).toEqual([]);
    expect((await fake.store.getJob(notFinished))?.status).toBe('succeeded');
    const resent = fake.transport.envelopes('task') as TaskEnvelope[];
    // A re-drive carries the attempts so far, so its first delivery is claimed, not admitted.
    expect(resent.map((e) => [e.taskId, e.input, e.attempts])).toEqual([
      [`${lost}.0.0`, 'a', 0],
      [`${lost}.0.1`, 'b', 2],
      [`${lost}.0.2`, 'c', 0],
    ]);
    const [metrics] = await fake.store.metrics();
    expect(metrics!.redrives).toMatchObject(result.redriven);
  });

  it('does not re-send a re-driven task at the next pass (its wait doubles)', async () => {
    const fake = fakeEngine({ jobs: [twoStages] });
    await runningJob(fake, twoStages, ['a']);
    // Long enough that the next pass, however slow the machine, comes before twice this.
    const stuck = { olderThanMs: 200 };
    await sleep(250);
    const reconciler = fake.modules.reconciler('a');
    expect((await reconciler.reconcile(stuck)).redriven).toEqual({ 'task-message-lost': 1 });
    expect((await reconciler.reconcile(stuck)).redriven).toEqual({});
    expect(fake.transport.sent.task).toHaveLength(1);
  });

  it('lets one instance at a time hold the lease', async () => {
    const fake = fakeEngine({ jobs: [twoStages] });
    await createJob(fake, { name: 'two', stageCount: 2 });
    await sleep(5);
    const a = fake.modules.reconciler('a');
    const b = fake.modules.reconciler('b');
    expect((await a.reconcile(stuckAfter)).ran).toBe(true);
    expect(await b.reconcile(stuckAfter)).toEqual({
      ran: false,
      redriven: {},
      purged: { jobs: 0, tasks: 0 },
    });
    expect((await a.reconcile(stuckAfter)).ran).toBe(true);
    expect(fake.transport.sent.stage).toHaveLength(2);
  });

  it('joins a pass in progress instead of starting another', async () => {
    const fake = fakeEngine({ jobs: [twoStages] });
    await createJob(fake, { name: 'two', stageCount: 2 });
    await sleep(5);
    const reconciler = fake.modules.reconciler('a');
    const first = reconciler.reconcile(stuckAfter);
    const second = reconciler.reconcile(stuckAfter);
    expect(second).toBe(first);
    expect((await first).redriven).toEqual({ 'job-not-started': 1 });
    expect(fake.transport.sent.stage).toHaveLength(1);
  });

  it('leaves untouched the work that is not old enough, and jobs on unconfigured transports', async () => {
    const fake = fakeEngine({ jobs: [twoStages] });
    await createJob(fake, { name: 'two', stageCount: 2 });
    await fake.store.createJob({
      id: 'other-path',
      name: 'two',
      params: null,
      transport: 'elsewhere',
      stageCount: 1,
    });
    const reconciler = fake.modules.reconciler();
    expect((await reconciler.reconcile({ olderThanMs: 60_000 })).redriven).toEqual({});
    await sleep(5);
    expect((await reconciler.reconcile(stuckAfter)).redriven).toEqual({
      'job-not-started': 1,
    });
    expect(fake.transport.stageMessages('other-path')).toEqual([]);
  });

  it('counts only what it re-drove and logs what it could not', async () => {
    const fake = fakeEngine({ jobs: [twoStages] });
    const jobId = await createJob(fake, { name: 'two', stageCount: 2 });
    await sleep(5);
    await fake.transport.close();
    expect((await fake.modules.reconciler().reconcile(stuckAfter)).redriven).toEqual({});
    expect(fake.logger.lines).toContainEqual(
      expect.objectContaining({
        level: 'error',
        fields: expect.objectContaining({ jobId, kind: 'job-not-started' }),
      }),
    );
  });

  describe('retention', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    /** A one-stage job run to `status` now (its tasks succeeded, or cancelled while open). */
    async function finishedJob(
      fake: ReturnType<typeof fakeEngine>,
      status: 'succeeded' | 'failed' | 'cancelled',
      inputs: unknown[],
    ): Promise<string> {
      const jobId = await runningJob(fake, twoStages, inputs);
      if (status === 'cancelled') {
        await fake.store.cancelJob(jobId);
        return jobId;
      }
      await finishStage(fake, { jobId, stage: 0 });
      await fake.store.finishJob(jobId, { status });
      return jobId;
    }

    it('deletes the finished jobs past their status’s retention with their stages and tasks, and nothing else', async () => {
      const fake = fakeEngine({
        jobs: [twoStages],
        retention: { succeeded: '1h', cancelled: 3_600_000 },
      });
      // Finished two hours ago (the store stamps the finish with the clock).
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() - 2 * 3_600_000);
      const oldSucceeded = await finishedJob(fake, 'succeeded', ['a', 'b', 'c']);
      const oldCancelled = await finishedJob(fake, 'cancelled', ['d']);
      const oldFailed = await finishedJob(fake, 'failed', ['e']);
      const oldRunning = await runningJob(fake, twoStages, ['f']);
      vi.useRealTimers();
      const young = await finishedJob(fake, 'succeeded', ['g']);
      const before = await fake.store.metrics();

      const result = await fake.modules.reconciler('a').reconcile();
      // (The old running job's task is re-driven: untouched for two hours.)
      expect(result).toEqual({
        ran: true,
        redriven: { 'task-message-lost': 1 },
        purged: { jobs: 2, tasks: 4 },
      });
      for (const gone of [oldSucceeded, oldCancelled]) {
        expect(await fake.store.getJob(gone)).toBeUndefined();
        expect(await fake.store.getStages(gone)).toEqual([]);
        expect((await fake.store.listTasks(gone)).tasks).toEqual([]);
      }
      // No retention for failed jobs; a running job is never purged; a young one is kept.
      expect((await fake.store.getJob(oldFailed))?.status).toBe('failed');
      expect((await fake.store.getJob(oldRunning))?.status).toBe('running');
      expect((await fake.store.listTasks(oldRunning)).tasks).toHaveLength(1);
      expect((await fake.store.getJob(young))?.status).toBe('succeeded');
      expect((await fake.store.listTasks(young)).tasks).toHaveLength(1);
      // The metrics keep the purged jobs' totals.
      const [after] = await fake.store.metrics();
      expect(after!.jobs).toEqual(before[0]!.jobs);
      expect(after!.tasks).toEqual(before[0]!.tasks);
      // Nothing left to purge: the next pass deletes nothing.
      expect((await fake.modules.reconciler('a').reconcile()).purged).toEqual({
        jobs: 0,
        tasks: 0,
      });
    });

    it('purges nothing without retention, nor from an instance without the lease', async () => {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() - 2 * 3_600_000);
      const off = fakeEngine({ jobs: [twoStages] });
      const kept = await finishedJob(off, 'succeeded', ['a']);
      const on = fakeEngine({ jobs: [twoStages], retention: { succeeded: '1h' } });
      const old = await finishedJob(on, 'succeeded', ['b']);
      vi.useRealTimers();
      expect((await off.modules.reconciler('a').reconcile()).purged).toEqual({
        jobs: 0,
        tasks: 0,
      });
      expect(await off.store.getJob(kept)).toBeDefined();
      await on.store.acquireLease('reconciler', 'another instance', 60_000);
      expect(await on.modules.reconciler('a').reconcile()).toMatchObject({
        ran: false,
        purged: { jobs: 0, tasks: 0 },
      });
      expect(await on.store.getJob(old)).toBeDefined();
    });
  });
});
