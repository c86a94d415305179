import { describe, expect, it } from 'vitest';
import { Barrier } from '../../src/engine/barrier.js';
import type { StageCompletion, TaskOutcome } from '../../src/store.js';
import { deferred, doubleJob, fakeEngine, runningJob } from './fake-context.js';

const outcome = (jobId: string, index: number): TaskOutcome => ({
  jobId,
  stage: 0,
  index,
  taskId: `${jobId}.0.${index}`,
  status: 'succeeded',
  result: index,
  attempt: 1,
});

describe('Barrier', () => {
  it('acts on a completed stage before the batch’s callers resume', async () => {
    const fake = fakeEngine();
    const jobId = await runningJob(fake, doubleJob, [1, 2]);
    const events: string[] = [];
    const gate = deferred();
    const completions: StageCompletion[] = [];
    const barrier = new Barrier({
      store: fake.store,
      onStageComplete: async (c) => {
        events.push('stage complete');
        completions.push(c);
        await gate.promise;
        events.push('stage acted on');
      },
    });
    const first = barrier.complete(outcome(jobId, 0)).then((a) => events.push(`task 0 ${a}`));
    const last = barrier.complete(outcome(jobId, 1)).then((a) => events.push(`task 1 ${a}`));
    await new Promise((r) => setTimeout(r, 20));
    expect(events.filter((e) => e.startsWith('task 1'))).toEqual([]);
    gate.resolve();
    await Promise.all([first, last]);
    expect(events.indexOf('stage acted on')).toBeLessThan(events.indexOf('task 1 true'));
    expect(completions).toEqual([{ jobId, stage: 0, succeeded: 2, failed: 0, total: 2 }]);
  });

  it('reports an outcome as not applied when the task was terminal already', async () => {
    const fake = fakeEngine();
    const jobId = await runningJob(fake, doubleJob, [1, 2]);
    const seen: StageCompletion[] = [];
    const barrier = new Barrier({
      store: fake.store,
      onStageComplete: async (c) => void seen.push(c),
    });
    expect(await barrier.complete(outcome(jobId, 0))).toBe(true);
    expect(await barrier.complete({ ...outcome(jobId, 0), status: 'failed' })).toBe(false);
    expect((await fake.store.getTask(`${jobId}.0.0`))!.status).toBe('succeeded');
    expect(seen).toEqual([]);
  });

  it('applies one of two outcomes of a task in one batch, and says so to that caller only', async () => {
    const fake = fakeEngine();
    const jobId = await runningJob(fake, doubleJob, [1, 2]);
    const barrier = new Barrier({ store: fake.store, onStageComplete: async () => {} });
    const both = await Promise.all([
      barrier.complete({
        ...outcome(jobId, 0),
        status: 'failed',
        error: { name: 'E', message: 'a' },
      }),
      barrier.complete({
        ...outcome(jobId, 0),
        status: 'failed',
        error: { name: 'E', message: 'b' },
      }),
    ]);
    expect(both).toEqual([true, false]);
    expect(await fake.store.getTask(`${jobId}.0.0`)).toMatchObject({
      status: 'failed',
      error: { message: 'a' },
    });
    expect((await fake.store.getStages(jobId))[0]).toMatchObject({ failed: 1 });
  });

  it('claims tasks: run with the attempt number, or why not', async () => {
    const fake = fakeEngine();
    const jobId = await runningJob(fake, doubleJob, [1, 2]);
    const barrier = new Barrier({ store: fake.store, onStageComplete: async () => {} });
    const ref = (index: number) => ({ jobId, stage: 0, index, taskId: `${jobId}.0.${index}` });
    expect(await barrier.claim({ ...ref(0), minAttempt: 2 })).toMatchObject({
      outcome: 'run',
      attempt: 2,
    });
    expect(await barrier.claim(ref(9))).toMatchObject({ outcome: 'missing' });
    const both = await barrier.claimAll([ref(1), { ...ref(0), withInput: true }]);
    expect(both.map((c) => c.outcome)).toEqual(['run', 'run']);
    expect(both[1]!.input).toBe(1);
    await barrier.complete(outcome(jobId, 1));
    expect(await barrier.claim(ref(1))).toMatchObject({ outcome: 'terminal' });
    await fake.store.cancelJob(jobId);
    expect(await barrier.claim(ref(9))).toMatchObject({ outcome: 'missing' });
  });

  it('admits a pack while the stage is open, and not once it is complete', async () => {
    const fake = fakeEngine();
    const jobId = await runningJob(fake, doubleJob, [1]);
    const barrier = new Barrier({ store: fake.store, onStageComplete: async () => {} });
    expect(barrier.admitsPacks).toBe(true);
    expect(await barrier.admitPack({ jobId, stage: 0, tasks: 1 })).toBe(true);
    await barrier.complete(outcome(jobId, 0));
    expect(await barrier.admitPack({ jobId, stage: 0, tasks: 1 })).toBe(false);
  });

  it('records a retried attempt: the task pending again with its error and attempt', async () => {
    const fake = fakeEngine();
    const jobId = await runningJob(fake, doubleJob, [1]);
    const barrier = new Barrier({ store: fake.store, onStageComplete: async () => {} });
    const error = { name: 'Error', message: 'flaky' };
    await barrier.retry({ jobId, stage: 0, index: 0, taskId: `${jobId}.0.0`, error, attempt: 1 });
    expect(await fake.store.getTask(`${jobId}.0.0`)).toMatchObject({
      status: 'pending',
      attempts: 1,
      error,
    });
  });
});
