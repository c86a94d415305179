import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
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
    });
    expect(fake.transport.stageMessages(notStarted)).toEqual([0]);
    expect(fake.transport.stageMessages(fanningOut)).toEqual([0]);
    expect(fake.transport.stageMessages(notAdvanced)).toEqual([1]);
    expect(fake.transport.stageMessages(notFinished)).toEqual([2]);
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
    await sleep(5);
    const reconciler = fake.modules.reconciler('a');
    expect((await reconciler.reconcile(stuckAfter)).redriven).toEqual({ 'task-message-lost': 1 });
    expect((await reconciler.reconcile(stuckAfter)).redriven).toEqual({});
    expect(fake.transport.sent.task).toHaveLength(1);
  });

  it('lets one instance at a time hold the lease', async () => {
    const fake = fakeEngine({ jobs: [twoStages] });
    await createJob(fake, { name: 'two', stageCount: 2 });
    await sleep(5);
    const a = fake.modules.reconciler('a');
    const b = fake.modules.reconciler('b');
    expect((await a.reconcile(stuckAfter)).ran).toBe(true);
    expect(await b.reconcile(stuckAfter)).toEqual({ ran: false, redriven: {} });
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
});
