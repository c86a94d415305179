import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineJob, defineTask, stage } from '../../src/define.js';
import { DEFAULTS } from '../../src/engine/defaults.js';
import { submit } from '../../src/engine/submit.js';
import { isSwitchyardError, ValidationError } from '../../src/errors.js';
import { doubleJob, fakeEngine } from './fake-context.js';

const typed = defineJob({
  name: 'typed',
  params: z.object({ n: z.number().int().positive() }),
  stages: [
    stage({
      name: 'count',
      task: defineTask({ name: 'noop', handler: (i: number) => i }),
      fanOut: (p: { n: number }) => Array.from({ length: p.n }, (_, i) => i),
    }),
  ],
});

const failure = async (p: Promise<unknown>) => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isSwitchyardError(err)) throw new Error(`expected a Switchyard error, got ${String(err)}`);
  return err;
};

describe('submit', () => {
  it('creates the job queued and sends its first stage message', async () => {
    const fake = fakeEngine();
    const result = await submit(fake.ctx, { jobName: 'double', params: { inputs: [1] } });
    expect(result).toMatchObject({ created: true, status: 'queued', transport: 'memory' });
    expect(await fake.store.getJob(result.jobId)).toMatchObject({ name: 'double', stageCount: 1 });
    expect(fake.transport.stageMessages(result.jobId)).toEqual([0]);
  });

  it('returns the same job for the same params in any key order, or the same idempotency key', async () => {
    const fake = fakeEngine();
    const a = await submit(fake.ctx, {
      jobName: 'double',
      params: { inputs: [1], x: { b: 1, a: 2 } },
    });
    const b = await submit(fake.ctx, {
      jobName: 'double',
      params: { x: { a: 2, b: 1 }, inputs: [1] },
    });
    expect(b).toMatchObject({ jobId: a.jobId, created: false });
    const k1 = await submit(fake.ctx, {
      jobName: 'double',
      params: { inputs: [1] },
      options: { idempotencyKey: 'order-7' },
    });
    const k2 = await submit(fake.ctx, {
      jobName: 'double',
      params: { inputs: [2] },
      options: { idempotencyKey: 'order-7' },
    });
    expect(k2).toMatchObject({ jobId: k1.jobId, created: false });
    expect(k1.jobId).not.toBe(a.jobId);
  });

  it('re-sends the first stage message only while the job has not started', async () => {
    const fake = fakeEngine();
    const { jobId } = await submit(fake.ctx, { jobName: 'double', params: { inputs: [1] } });
    await submit(fake.ctx, { jobName: 'double', params: { inputs: [1] } });
    expect(fake.transport.stageMessages(jobId)).toEqual([0, 0]);
    await fake.store.startStage(jobId, 0, 's0');
    const again = await submit(fake.ctx, { jobName: 'double', params: { inputs: [1] } });
    expect(again.status).toBe('running');
    expect(fake.transport.stageMessages(jobId)).toEqual([0, 0]);
  });

  it('validates params against the job’s schema, naming the field', async () => {
    const fake = fakeEngine({ jobs: [doubleJob, typed as never] });
    const err = await failure(submit(fake.ctx, { jobName: 'typed', params: { n: -1 } }));
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.issues?.[0]?.path).toBe('params.n');
    expect(fake.transport.sent.stage).toEqual([]);
  });

  it('refuses an unknown job, an unknown transport, a bad idempotency key and unserializable params', async () => {
    const fake = fakeEngine();
    expect((await failure(submit(fake.ctx, { jobName: 'nope', params: {} }))).code).toBe(
      'UNKNOWN_JOB',
    );
    expect(
      (
        await failure(
          submit(fake.ctx, { jobName: 'double', params: {}, options: { transport: 'x' } }),
        )
      ).code,
    ).toBe('UNKNOWN_TRANSPORT');
    for (const key of ['', 'k'.repeat(DEFAULTS.maxIdempotencyKeyLength + 1)]) {
      const err = await failure(
        submit(fake.ctx, { jobName: 'double', params: {}, options: { idempotencyKey: key } }),
      );
      expect(err.issues?.[0]?.path).toBe('idempotencyKey');
    }
    expect((await failure(submit(fake.ctx, { jobName: 'double', params: { n: 1n } }))).code).toBe(
      'NOT_SERIALIZABLE',
    );
    expect(fake.transport.sent.stage).toEqual([]);
  });
});
