import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/engine/defaults.js';
import type { StageEnvelope } from '../../src/envelope.js';
import {
  createJob,
  type FakeEngine,
  fakeEngine,
  finishStage,
  inbound,
  runningJob,
  type StageSpec,
  testJob,
} from './fake-context.js';

const envelope = (jobId: string, stage: number): StageEnvelope => ({
  v: 1,
  kind: 'stage',
  jobId,
  stage,
});
const run = (fake: FakeEngine, jobId: string, stage: number, deliveryCount = 1) =>
  fake.modules.stages.run(envelope(jobId, stage), inbound(envelope(jobId, stage), deliveryCount));

function jobWith(spec: StageSpec = {}) {
  const job = testJob({ name: 'staged', stages: [spec, {}], finalize: () => 'done' });
  const fake = fakeEngine({ jobs: [job] });
  return { job, fake };
}

describe('StageRunner', () => {
  it('starts a queued job’s first stage and fans it out', async () => {
    const { fake } = jobWith();
    const jobId = await createJob(fake, {
      name: 'staged',
      stageCount: 2,
      params: { inputs: [1, 2, 3] },
    });
    expect(await run(fake, jobId, 0)).toEqual({ action: 'complete' });
    expect(await fake.store.getJob(jobId)).toMatchObject({ status: 'running', currentStage: 0 });
    expect(fake.transport.sent.task).toHaveLength(3);
  });

  it('acts on a complete stage found by a redelivered message, sending nothing else', async () => {
    const { job, fake } = jobWith();
    const jobId = await runningJob(fake, job, [1]);
    await finishStage(fake, { jobId, stage: 0 });
    expect(await run(fake, jobId, 0, 2)).toEqual({ action: 'complete' });
    expect(fake.transport.stageMessages(jobId)).toEqual([1]);
    expect(fake.transport.sent.task).toEqual([]);
  });

  it('finishes the job on the message past its last stage', async () => {
    const { job, fake } = jobWith();
    const jobId = await runningJob(fake, job, [1]);
    await finishStage(fake, { jobId, stage: 0 });
    await run(fake, jobId, 1);
    await finishStage(fake, { jobId, stage: 1 });
    expect(await run(fake, jobId, 2)).toEqual({ action: 'complete' });
    expect(await fake.store.getJob(jobId)).toMatchObject({ status: 'succeeded', result: 'done' });
  });

  it('ignores a stale duplicate of an earlier stage, and a message for a finished job', async () => {
    const { job, fake } = jobWith();
    const jobId = await runningJob(fake, job, [1]);
    await finishStage(fake, { jobId, stage: 0 });
    await run(fake, jobId, 1);
    fake.transport.clear();
    expect(await run(fake, jobId, 0, 3)).toEqual({ action: 'complete' });
    await fake.store.cancelJob(jobId);
    expect(await run(fake, jobId, 1, 2)).toEqual({ action: 'complete' });
    expect(fake.transport.sent).toEqual({ stage: [], task: [] });
  });

  it('dead-letters a message for a job that does not exist or that this worker does not define', async () => {
    const { fake } = jobWith();
    expect(await run(fake, 'gone', 0)).toMatchObject({
      action: 'deadLetter',
      reason: 'JobNotFound',
    });
    const jobId = await createJob(fake, { name: 'elsewhere', stageCount: 1 });
    expect(await run(fake, jobId, 0)).toMatchObject({ action: 'deadLetter', reason: 'UnknownJob' });
  });

  it('leaves a throwing fanOut to redelivery, then fails the job at the last delivery', async () => {
    const { fake } = jobWith({
      fanOut: () => {
        throw new Error('cannot list');
      },
    });
    const jobId = await createJob(fake, { name: 'staged', stageCount: 2, params: { inputs: [] } });
    await expect(run(fake, jobId, 0, 1)).rejects.toThrow('cannot list');
    expect((await fake.store.getJob(jobId))!.status).toBe('running');
    expect(await run(fake, jobId, 0, DEFAULTS.maxStageDeliveries)).toEqual({ action: 'complete' });
    expect(await fake.store.getJob(jobId)).toMatchObject({
      status: 'failed',
      error: { message: 'fan-out of stage "s0" failed: cannot list' },
    });
  });

  it('fails the job at once on a fan-out input JSON cannot carry', async () => {
    const { fake } = jobWith({ fanOut: () => [() => 1] });
    const jobId = await createJob(fake, { name: 'staged', stageCount: 2, params: { inputs: [] } });
    expect(await run(fake, jobId, 0, 1)).toEqual({ action: 'complete' });
    expect(await fake.store.getJob(jobId)).toMatchObject({
      status: 'failed',
      error: { code: 'NOT_SERIALIZABLE' },
    });
  });
});
