import { defineJob, defineTask, stage } from '@switchyard/core';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startYards } from './harness.js';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

/** A one-stage job of 6 tasks whose task 3 fails while `broken` holds. */
function fragileJob(broken: { on: boolean }) {
  const fragile = defineTask({
    name: 'fragile',
    input: z.object({ i: z.number() }),
    retry: { maxAttempts: 1 },
    handler: ({ i }) => {
      if (i === 3 && broken.on) throw new Error('broken for now');
      return i * 2;
    },
  });
  return defineJob({
    name: 'fragile-job',
    stages: [
      stage({
        name: 'only',
        task: fragile,
        fanOut: () => Array.from({ length: 6 }, (_, i) => ({ i })),
      }),
    ],
  });
}

async function deadLetterCount(list: () => Promise<unknown[]>, count: number) {
  for (let i = 0; i < 200; i++) {
    if ((await list()).length >= count) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('operating jobs through the Switchyard', () => {
  it('lists a failed job, retries it, and it runs on to success', async () => {
    const broken = { on: true };
    const h = startYards([fragileJob(broken)]);
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('fragile-job', undefined);
    expect((await h.yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('failed');
    const page = await h.yard.listJobs({ status: 'failed' });
    expect(page.jobs.map((j) => j.id)).toEqual([jobId]);
    expect((await h.yard.listTasks(jobId, { status: 'failed' })).tasks.map((t) => t.index)).toEqual(
      [3],
    );

    broken.on = false;
    expect(await h.yard.retry(jobId, { stage: 'only' })).toEqual({
      jobId,
      retried: 1,
      status: 'running',
    });
    const view = await h.yard.waitFor(jobId, { pollIntervalMs: 10 });
    expect(view.status).toBe('succeeded');
    expect(view.stages[0]).toMatchObject({ succeeded: 6, failed: 0, total: 6 });
  });

  it('replays a dead-lettered task so it runs again, instead of dropping it', async () => {
    const broken = { on: true };
    const h = startYards([fragileJob(broken)]);
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('fragile-job', undefined);
    expect((await h.yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('failed');
    await deadLetterCount(() => h.transport.listDeadLetters!('task'), 1);
    broken.on = false;
    expect(await h.yard.replayDeadLetters(h.transport.name, 'task')).toBe(1);
    expect((await h.yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    expect(await h.transport.listDeadLetters!('task')).toEqual([]);
  });

  it('cancels and purges by filter', async () => {
    const h = startYards([fragileJob({ on: false })]);
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('fragile-job', undefined);
    expect((await h.yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    expect(await h.yard.cancelJobs({ name: 'fragile-job' })).toEqual({ cancelled: 0 });
    expect(
      await h.yard.purge({ status: 'succeeded', finishedBefore: new Date(Date.now() + 1000) }),
    ).toEqual({ jobs: 1, tasks: 6 });
    expect(await h.yard.getJob(jobId)).toBeUndefined();
    expect((await h.yard.metrics()).transports[0]?.jobs.succeeded).toBe(1);
  });
});
