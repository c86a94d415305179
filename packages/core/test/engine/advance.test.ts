import { describe, expect, it } from 'vitest';
import { tolerance } from '../../src/engine/stages/advance.js';
import {
  type FakeEngine,
  fakeEngine,
  finishStage,
  runningJob,
  startStage,
  testJob,
} from './fake-context.js';

const twoStages = testJob({ name: 'two', stages: [{ name: 'first' }, { name: 'second' }] });
const tolerant = testJob({ name: 'tolerant', stages: [{ tolerateFailures: 2 }, {}] });
const ratio = testJob({ name: 'ratio', stages: [{ tolerateFailures: { ratio: 0.1 } }, {}] });

async function completedStage(fake: FakeEngine, job = twoStages, n = 3, failed: number[] = []) {
  const jobId = await runningJob(
    fake,
    job,
    Array.from({ length: n }, (_, i) => i),
  );
  const { completedStages } = await finishStage(fake, { jobId, stage: 0, failed });
  return { jobId, completion: completedStages[0]! };
}

describe('tolerance', () => {
  it('is none by default, a count, or a ratio of the stage rounded down', () => {
    expect(tolerance(undefined, 100)).toBe(0);
    expect(tolerance(3, 100)).toBe(3);
    expect(tolerance(-2, 100)).toBe(0);
    expect(tolerance({ ratio: 0.1 }, 25)).toBe(2);
    expect(tolerance({ ratio: 0.1 }, 9)).toBe(0);
    expect(tolerance({ ratio: 2 }, 25)).toBe(25);
    expect(tolerance({ ratio: -1 }, 25)).toBe(0);
  });
});

describe('StageAdvance.onStageComplete', () => {
  it('sends the next stage’s message once when the stage has no failure', async () => {
    const fake = fakeEngine({ jobs: [twoStages] });
    const { jobId, completion } = await completedStage(fake);
    await fake.modules.advance.onStageComplete(completion);
    expect(fake.transport.stageMessages(jobId)).toEqual([1]);
    expect((await fake.store.getJob(jobId))!.status).toBe('running');
  });

  it('advances a stage whose failures are within its tolerance (count or ratio)', async () => {
    const fake = fakeEngine({ jobs: [tolerant, ratio] });
    const a = await completedStage(fake, tolerant, 5, [0, 3]);
    await fake.modules.advance.onStageComplete(a.completion);
    expect(fake.transport.stageMessages(a.jobId)).toEqual([1]);
    const b = await completedStage(fake, ratio, 20, [7, 8]);
    await fake.modules.advance.onStageComplete(b.completion);
    expect(fake.transport.stageMessages(b.jobId)).toEqual([1]);
  });

  it('fails the job with JOB_FAILED naming the failed tasks when it tolerates fewer', async () => {
    const fake = fakeEngine({ jobs: [ratio] });
    const { jobId, completion } = await completedStage(fake, ratio, 20, [2, 5, 11]);
    await fake.modules.advance.onStageComplete(completion);
    const job = (await fake.store.getJob(jobId))!;
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({
      name: 'JobFailedError',
      code: 'JOB_FAILED',
      details: {
        stage: 0,
        failed: 3,
        total: 20,
        failedTasks: [2, 5, 11].map((i) => `${jobId}.0.${i}`),
      },
    });
    expect(job.error!.message).toContain('stage "s0" failed: 3 of 20');
    expect(job.error!.message).toContain('task 2 broke');
    expect(fake.transport.stageMessages(jobId)).toEqual([]);
  });

  it('names at most ten failed tasks and counts the rest', async () => {
    const fake = fakeEngine({ jobs: [twoStages] });
    const failed = Array.from({ length: 13 }, (_, i) => i);
    const { jobId, completion } = await completedStage(fake, twoStages, 13, failed);
    await fake.modules.advance.onStageComplete(completion);
    const error = (await fake.store.getJob(jobId))!.error!;
    expect((error.details as { failedTasks: string[] }).failedTasks).toHaveLength(10);
    expect(error.message).toContain('and 3 more');
  });

  it('ignores a completion of a stage the job is no longer in, or of a finished job', async () => {
    const fake = fakeEngine({ jobs: [twoStages] });
    const { jobId, completion } = await completedStage(fake);
    await startStage(fake, { jobId, stage: 1, inputs: [1] });
    await fake.modules.advance.onStageComplete(completion);
    const cancelled = await completedStage(fake);
    await fake.store.cancelJob(cancelled.jobId);
    await fake.modules.advance.onStageComplete(cancelled.completion);
    expect(fake.transport.sent.stage).toEqual([]);
  });
});

describe('StageAdvance.recheck', () => {
  it('acts again on a complete stage, concurrent rechecks sharing one', async () => {
    const fake = fakeEngine({ jobs: [twoStages] });
    const { jobId } = await completedStage(fake);
    const a = fake.modules.advance.recheck(jobId, 0);
    const b = fake.modules.advance.recheck(jobId, 0);
    expect(b).toBe(a);
    await Promise.all([a, b]);
    expect(fake.transport.stageMessages(jobId)).toEqual([1]);
    // Once it settled, a later recheck runs anew (the stage message is idempotent).
    await fake.modules.advance.recheck(jobId, 0);
    expect(fake.transport.stageMessages(jobId)).toEqual([1, 1]);
  });

  it('does nothing while the stage is open', async () => {
    const fake = fakeEngine({ jobs: [twoStages] });
    const jobId = await runningJob(fake, twoStages, [1, 2]);
    await fake.modules.advance.recheck(jobId, 0);
    await fake.modules.advance.recheck(jobId, 5);
    expect(fake.transport.sent.stage).toEqual([]);
  });

  it('keeps rechecks of different stages apart', async () => {
    const fake = fakeEngine({ jobs: [twoStages] });
    const one = await completedStage(fake);
    const other = await completedStage(fake);
    const a = fake.modules.advance.recheck(one.jobId, 0);
    const b = fake.modules.advance.recheck(other.jobId, 0);
    expect(b).not.toBe(a);
    await Promise.all([a, b]);
    expect(fake.transport.stageMessages(one.jobId)).toEqual([1]);
    expect(fake.transport.stageMessages(other.jobId)).toEqual([1]);
  });
});

describe('StageAdvance.redriveCurrent', () => {
  it('re-drives the current stage only when it is complete', async () => {
    const fake = fakeEngine({ jobs: [twoStages] });
    const open = await runningJob(fake, twoStages, [1]);
    expect(await fake.modules.advance.redriveCurrent(open)).toBe(false);
    expect(await fake.modules.advance.redriveCurrent('no-such-job')).toBe(false);
    const { jobId } = await completedStage(fake);
    expect(await fake.modules.advance.redriveCurrent(jobId)).toBe(true);
    expect(fake.transport.stageMessages(jobId)).toEqual([1]);
  });
});
