import { describe, expect, it } from 'vitest';
import type { FinalizeContext } from '../../src/define.js';
import type { AnyJob } from '../../src/engine/api.js';
import { DEFAULTS } from '../../src/engine/defaults.js';
import { finalize } from '../../src/engine/stages/finalize.js';
import {
  type FakeEngine,
  fakeEngine,
  finishStage,
  type Inputs,
  inbound,
  runningJob,
  testJob,
} from './fake-context.js';

/** A one-stage job whose stage is complete (results = index × 10), ready to finish. */
async function readyToFinish(finalizer?: (ctx: FinalizeContext<Inputs>) => unknown) {
  const job = testJob({
    name: 'fin',
    stages: [{ name: 'only' }],
    ...(finalizer ? { finalize: finalizer } : {}),
  });
  const fake = fakeEngine({ jobs: [job] });
  const jobId = await runningJob(fake, job, [1, 2, 3]);
  await finishStage(fake, { jobId, stage: 0, result: (i) => i * 10, failed: [1] });
  return { fake, job, jobId };
}

const finish = async (fake: FakeEngine, job: AnyJob, jobId: string, deliveryCount = 1) =>
  finalize(fake.ctx, {
    job: (await fake.store.getJob(jobId))!,
    definition: job,
    message: inbound({}, deliveryCount),
  });

describe('finalize', () => {
  it('turns the job’s results into its result and succeeds it', async () => {
    let seen: unknown;
    const { fake, job, jobId } = await readyToFinish(async (ctx) => {
      seen = { params: ctx.params, stages: ctx.stages };
      let sum = 0;
      for await (const r of ctx.results<number>('only')) sum += r.result;
      return { sum };
    });
    expect(await finish(fake, job, jobId)).toEqual({ action: 'complete' });
    expect(await fake.store.getJob(jobId)).toMatchObject({
      status: 'succeeded',
      result: { sum: 20 },
    });
    expect(seen).toEqual({
      params: { inputs: [1, 2, 3] },
      stages: [{ name: 'only', total: 3, succeeded: 2, failed: 1 }],
    });
  });

  it('succeeds a job without finalize, with no result', async () => {
    const { fake, job, jobId } = await readyToFinish();
    expect(await finish(fake, job, jobId)).toEqual({ action: 'complete' });
    const record = (await fake.store.getJob(jobId))!;
    expect(record.status).toBe('succeeded');
    expect(record.result).toBeUndefined();
  });

  it('retries a throwing finalize with backoff, then fails the job at the last delivery', async () => {
    const { fake, job, jobId } = await readyToFinish(() => {
      throw new Error('not yet');
    });
    const first = await finish(fake, job, jobId, 1);
    expect(first).toMatchObject({ action: 'retry', reason: 'not yet' });
    expect((first as { delayMs: number }).delayMs).toBeGreaterThan(0);
    expect((await fake.store.getJob(jobId))!.status).toBe('running');
    expect(await finish(fake, job, jobId, DEFAULTS.maxStageDeliveries)).toEqual({
      action: 'complete',
    });
    expect(await fake.store.getJob(jobId)).toMatchObject({
      status: 'failed',
      error: { message: 'finalize failed: not yet' },
    });
  });

  it('fails at once on a result JSON cannot carry', async () => {
    const { fake, job, jobId } = await readyToFinish(() => ({ big: 1n }));
    expect(await finish(fake, job, jobId, 1)).toEqual({ action: 'complete' });
    expect(await fake.store.getJob(jobId)).toMatchObject({
      status: 'failed',
      error: { code: 'NOT_SERIALIZABLE' },
    });
  });

  it('ignores a finish message that raced ahead of the last stage’s completion', async () => {
    let calls = 0;
    const job = testJob({ name: 'early', stages: [{}], finalize: () => ++calls });
    const fake = fakeEngine({ jobs: [job] });
    const jobId = await runningJob(fake, job, [1]);
    expect(await finish(fake, job, jobId)).toEqual({ action: 'complete' });
    expect(calls).toBe(0);
    expect((await fake.store.getJob(jobId))!.status).toBe('running');
  });
});
