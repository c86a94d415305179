import { describe, expect, it } from 'vitest';
import type { TaskResult } from '../../src/define.js';
import { cancel } from '../../src/engine/operations.js';
import { getJob, ready, results, waitFor } from '../../src/engine/queries.js';
import { stageResults } from '../../src/engine/stages/results.js';
import { isSwitchyardError } from '../../src/errors.js';
import type { Store } from '../../src/store.js';
import { fakeEngine, finishStage, runningJob, startStage, testJob } from './fake-context.js';

const twoStages = testJob({ name: 'two', stages: [{ name: 'split' }, { name: 'merge' }] });

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

/** The same store without its results-only listing: results are read from task pages. */
function withoutListResults(store: Store): Store {
  const plain = Object.create(store) as Store;
  Object.defineProperty(plain, 'listResults', { value: undefined });
  return plain;
}

async function twoStagesDone() {
  const fake = fakeEngine({ jobs: [twoStages] });
  const jobId = await runningJob(fake, twoStages, [1, 2, 3]);
  await finishStage(fake, { jobId, stage: 0, failed: [1], result: (i) => `a${i}` });
  await startStage(fake, { jobId, stage: 1, inputs: [1], name: 'merge' });
  await finishStage(fake, { jobId, stage: 1, result: () => 'b' });
  return { fake, jobId };
}

describe('queries', () => {
  it('streams succeeded results of one stage (by name or index) or of all, in task order', async () => {
    const { fake, jobId } = await twoStagesDone();
    const ids = (rs: TaskResult[]) => rs.map((r) => [r.taskId, r.result]);
    expect(ids(await collect(results(fake.ctx, jobId, 'split')))).toEqual([
      [`${jobId}.0.0`, 'a0'],
      [`${jobId}.0.2`, 'a2'],
    ]);
    expect(ids(await collect(results(fake.ctx, jobId, 1)))).toEqual([[`${jobId}.1.0`, 'b']]);
    expect(await collect(results(fake.ctx, jobId))).toHaveLength(3);
  });

  it('reads the same results from task pages when the store has no results listing', async () => {
    const fake = fakeEngine({ jobs: [twoStages] });
    const n = 2500;
    const jobId = await runningJob(
      fake,
      twoStages,
      Array.from({ length: n }, (_, i) => i),
    );
    await finishStage(fake, { jobId, stage: 0, failed: [7], result: (i) => i * 2 });
    const fast = await collect(stageResults(fake.store, jobId, 0));
    const paged = await collect(stageResults(withoutListResults(fake.store), jobId, 0));
    expect(paged).toEqual(fast);
    expect(fast).toHaveLength(n - 1);
    expect(fast.map((r) => r.index)).toEqual(
      Array.from({ length: n }, (_, i) => i).filter((i) => i !== 7),
    );
  });

  it('refuses results of an unknown job or stage', async () => {
    const { fake, jobId } = await twoStagesDone();
    const err = await collect(results(fake.ctx, 'nope')).catch((e: unknown) => e);
    expect(isSwitchyardError(err) && err.code).toBe('JOB_NOT_FOUND');
    const stageErr = await collect(results(fake.ctx, jobId, 'nope')).catch((e: unknown) => e);
    expect(isSwitchyardError(stageErr) && stageErr.issues?.[0]?.path).toBe('stage');
  });

  it('getJob views a job from its records; undefined when unknown', async () => {
    const { fake, jobId } = await twoStagesDone();
    const view = await getJob(fake.ctx, jobId);
    expect(view?.stages.map((s) => [s.name, s.succeeded, s.failed])).toEqual([
      ['split', 2, 1],
      ['merge', 1, 0],
    ]);
    expect(await getJob(fake.ctx, 'nope')).toBeUndefined();
  });

  it('waitFor resolves once the job is terminal, reporting progress; aborts on its signal', async () => {
    const { fake, jobId } = await twoStagesDone();
    const seen: string[] = [];
    const waiting = waitFor(fake.ctx, jobId, {
      pollIntervalMs: 5,
      onProgress: (v) => seen.push(v.status),
    });
    await new Promise((r) => setTimeout(r, 20));
    await fake.store.finishJob(jobId, { status: 'succeeded' });
    expect((await waiting).status).toBe('succeeded');
    expect(seen[0]).toBe('running');
    expect(seen.at(-1)).toBe('succeeded');
    const other = await runningJob(fake, twoStages, [1]);
    const controller = new AbortController();
    const aborted = waitFor(fake.ctx, other, { pollIntervalMs: 5, signal: controller.signal });
    controller.abort();
    const err = await aborted.catch((e: unknown) => e);
    expect(isSwitchyardError(err) && err.code).toBe('ABORTED');
    const missing = await waitFor(fake.ctx, 'nope').catch((e: unknown) => e);
    expect(isSwitchyardError(missing) && missing.code).toBe('JOB_NOT_FOUND');
  });

  it('waitFor wakes at once when this process ends the job, not at its next poll', async () => {
    const hour = 3_600_000;
    const { fake, jobId } = await twoStagesDone();
    const finished = waitFor(fake.ctx, jobId, { pollIntervalMs: hour });
    await new Promise((r) => setTimeout(r, 20));
    await fake.ctx.directory.finish(jobId, { status: 'succeeded' });
    expect((await finished).status).toBe('succeeded');
    const doomed = await runningJob(fake, twoStages, [1]);
    const cancelled = waitFor(fake.ctx, doomed, { pollIntervalMs: hour });
    await new Promise((r) => setTimeout(r, 5));
    expect(await cancel(fake.ctx, doomed)).toBe(true);
    expect((await cancelled).status).toBe('cancelled');
    // Ended in the store by someone else: only the poll sees it.
    const other = await runningJob(fake, twoStages, [1]);
    const controller = new AbortController();
    let settled = false;
    const polled = waitFor(fake.ctx, other, {
      pollIntervalMs: 30,
      signal: controller.signal,
    }).finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 5));
    await fake.store.finishJob(other, { status: 'failed' });
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    expect((await polled).status).toBe('failed');
    // An abort still ends a wait whose poll is an hour away.
    const third = await runningJob(fake, twoStages, [1]);
    const aborting = new AbortController();
    const aborted = waitFor(fake.ctx, third, { pollIntervalMs: hour, signal: aborting.signal });
    setTimeout(() => aborting.abort(), 10);
    const err = await aborted.catch((e: unknown) => e);
    expect(isSwitchyardError(err) && err.code).toBe('ABORTED');
    // Aborted while the job was being read: the wait does not start.
    const during = new AbortController();
    const store: Store = Object.create(fake.store);
    store.getJob = async (id) => {
      const job = await fake.store.getJob(id);
      during.abort();
      return job;
    };
    const reading = waitFor({ ...fake.ctx, store }, third, {
      pollIntervalMs: hour,
      signal: during.signal,
    });
    const late = await reading.catch((e: unknown) => e);
    expect(isSwitchyardError(late) && late.code).toBe('ABORTED');
  });

  it('ready checks the store and each transport, naming what failed', async () => {
    const fake = fakeEngine();
    expect(await ready(fake.ctx)).toEqual({
      ok: true,
      checks: { store: { ok: true }, 'transport:memory': { ok: true } },
    });
    await fake.transport.close();
    expect(await ready(fake.ctx)).toEqual({
      ok: false,
      checks: {
        store: { ok: true },
        'transport:memory': { ok: false, error: 'memory transport is closed' },
      },
    });
  });
});
