import { isSwitchyardError, memoryStore, memoryTransport } from '@switchyard/core';
import {
  type DeadLetterCapability,
  encodeEnvelope,
  type JobRecord,
  type Store,
  type Transport,
  taskId,
} from '@switchyard/core/driver';
import { describe, expect, it } from 'vitest';
import {
  acceptForReplay,
  CancelWatch,
  cancelJobs,
  parseDuration,
  purgeJobs,
  replayDeadLetters,
  resolveRetention,
  retentionPass,
  retryJob,
  retryJobs,
} from '../src/operations/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const code = (err: unknown) => (isSwitchyardError(err) ? err.code : String(err));

/** A job with one stage of `count` tasks, the `failing` ones failed; finished failed if any failed. */
async function ranJob(store: Store, id: string, count: number, failing: number[], name = 'etl') {
  await store.createJob({ id, name, params: {}, transport: 'memory', stageCount: 1 });
  await store.startStage(id, 0, 'work');
  await store.insertTasks(
    id,
    0,
    Array.from({ length: count }, (_, index) => ({ index, input: index })),
  );
  await store.sealStage(id, 0, count);
  await store.completeTasks(
    Array.from({ length: count }, (_, i) => ({
      jobId: id,
      stage: 0,
      index: i,
      taskId: taskId(id, 0, i),
      ...(failing.includes(i)
        ? { status: 'failed' as const, error: { name: 'E', message: 'no' } }
        : { status: 'succeeded' as const, result: i }),
    })),
  );
  await store.finishJob(id, failing.length > 0 ? { status: 'failed' } : { status: 'succeeded' });
}

describe('retry', () => {
  it('re-opens a failed job’s failed tasks and re-sends exactly those', async () => {
    const store = memoryStore();
    await ranJob(store, 'j', 4, [1, 2]);
    const sent: [string, readonly string[]][] = [];
    const deps = {
      store,
      resendTasks: async (job: JobRecord, ids: readonly string[]) => {
        sent.push([job.id, ids]);
      },
    };
    expect(await retryJob(deps, 'j', { stage: 'work' })).toEqual({
      jobId: 'j',
      retried: 2,
      status: 'running',
    });
    expect(sent).toEqual([['j', [taskId('j', 0, 1), taskId('j', 0, 2)]]]);
    expect(await retryJob(deps, 'j')).toMatchObject({ retried: 0, status: 'running' });
    await expect(retryJob(deps, 'j', { stage: 'nope' })).rejects.toSatisfy(
      (e) => code(e) === 'INVALID_INPUT',
    );
    await expect(retryJob(deps, 'j', { stage: -1 })).rejects.toSatisfy(
      (e) => code(e) === 'INVALID_INPUT',
    );
    await expect(retryJob(deps, 'missing')).rejects.toSatisfy((e) => code(e) === 'JOB_NOT_FOUND');
  });

  it('retries every failed job a filter matches', async () => {
    const store = memoryStore();
    await ranJob(store, 'a', 3, [0], 'x');
    await ranJob(store, 'b', 3, [0, 1], 'x');
    await ranJob(store, 'c', 3, [2], 'y');
    await ranJob(store, 'd', 3, [], 'x');
    const resent: string[] = [];
    const result = await retryJobs(
      { store, resendTasks: async (_job, ids) => void resent.push(...ids) },
      { name: 'x' },
    );
    expect(result).toEqual({ jobs: 2, retried: 3 });
    expect(resent).toHaveLength(3);
    expect((await store.getJob('c'))?.status).toBe('failed');
  });
});

describe('cancelJobs', () => {
  it('cancels the open jobs a filter matches, and only those', async () => {
    const store = memoryStore();
    await ranJob(store, 'done', 1, []);
    for (const id of ['q1', 'q2', 'other', 'later'])
      await store.createJob({
        id,
        name: id === 'other' ? 'other' : 'etl',
        params: {},
        transport: 'memory',
        stageCount: 1,
        ...(id === 'later' ? { runAt: new Date(Date.now() + 3_600_000) } : {}),
      });
    expect((await store.getJob('later'))?.status).toBe('scheduled');
    expect(await cancelJobs(store, { name: 'etl' })).toEqual({ cancelled: 3 });
    expect((await store.getJob('later'))?.status).toBe('cancelled');
    expect((await store.getJob('other'))?.status).toBe('queued');
    expect((await store.getJob('done'))?.status).toBe('succeeded');
    expect(await cancelJobs(store, { status: 'succeeded' })).toEqual({ cancelled: 0 });
  });
});

describe('purge and retention', () => {
  it('purges by filter up to a limit, batch by batch', async () => {
    const store = memoryStore();
    for (let i = 0; i < 5; i++) await ranJob(store, `p${i}`, 3, []);
    await ranJob(store, 'f', 3, [0]);
    const soon = new Date(Date.now() + 1000);
    expect(
      await purgeJobs(
        store,
        { status: 'succeeded', finishedBefore: soon, limit: 3 },
        { batchJobs: 1, batchTasks: 2, pauseMs: 0 },
      ),
    ).toMatchObject({ jobs: 3, tasks: 9 });
    expect(await purgeJobs(store, { status: 'succeeded', finishedBefore: soon })).toMatchObject({
      jobs: 2,
      tasks: 6,
      more: false,
    });
    expect((await store.listJobs()).jobs.map((j) => j.id)).toEqual(['f']);
    await expect(purgeJobs(store, { finishedBefore: new Date('x') })).rejects.toSatisfy(
      (e) => code(e) === 'INVALID_INPUT',
    );
  });

  it('purges per status after its retention', async () => {
    const store = memoryStore();
    await ranJob(store, 'ok', 1, []);
    await ranJob(store, 'bad', 1, [0]);
    const retention = resolveRetention({ succeeded: '1h', failed: '2h' });
    expect(retention).toEqual({ succeeded: 3_600_000, failed: 7_200_000 });
    const inNinetyMinutes = new Date(Date.now() + 90 * 60_000);
    expect(await retentionPass(store, retention, { now: inNinetyMinutes })).toEqual({
      jobs: 1,
      tasks: 1,
    });
    expect(await store.getJob('ok')).toBeUndefined();
    expect(await store.getJob('bad')).toBeDefined();
    expect(() => resolveRetention({ failed: '3 fortnights' as '3d' })).toThrow(/retention.failed/);
  });

  it('bounds a retention pass by batches over every status, and stops when its signal aborts', async () => {
    const store = memoryStore();
    for (let i = 0; i < 4; i++) await ranJob(store, `ok${i}`, 2, []);
    for (let i = 0; i < 4; i++) await ranJob(store, `bad${i}`, 2, [0]);
    const retention = resolveRetention({ succeeded: 0, failed: 0 });
    const later = new Date(Date.now() + 1000);
    const pacing = { batchJobs: 1, pauseMs: 0, now: later };
    // Three batches in all: the succeeded jobs take them; the failed ones wait for a later pass.
    expect(await retentionPass(store, retention, { ...pacing, maxBatches: 3 })).toEqual({
      jobs: 3,
      tasks: 6,
    });
    expect((await store.listJobs({ status: 'failed' })).jobs).toHaveLength(4);
    const stopped = new AbortController();
    stopped.abort();
    expect(await retentionPass(store, retention, { ...pacing, signal: stopped.signal })).toEqual({
      jobs: 0,
      tasks: 0,
    });
    expect(await retentionPass(store, retention, { ...pacing, maxBatches: 100 })).toEqual({
      jobs: 5,
      tasks: 10,
    });
    expect((await store.listJobs()).jobs).toEqual([]);
  });

  it('parses durations', () => {
    expect(parseDuration('7d', 'x')).toBe(604_800_000);
    expect(parseDuration('1.5h', 'x')).toBe(5_400_000);
    expect(parseDuration('250ms', 'x')).toBe(250);
    expect(parseDuration(10, 'x')).toBe(10);
    expect(() => parseDuration('-1d', 'keep')).toThrow(/keep/);
    expect(() => parseDuration(Number.NaN, 'keep')).toThrow(/keep/);
  });
});

describe('CancelWatch', () => {
  it('aborts a cancelled job’s running handlers at once where the store tells of cancels', async () => {
    const store = memoryStore();
    await store.createJob({ id: 'j', name: 'x', params: {}, transport: 'memory', stageCount: 1 });
    await store.createJob({ id: 'k', name: 'x', params: {}, transport: 'memory', stageCount: 1 });
    const watch = new CancelWatch({ store, intervalMs: 60_000 });
    await watch.start();
    const a = new AbortController();
    const b = new AbortController();
    const other = new AbortController();
    watch.track('j', a);
    const release = watch.track('j', b);
    watch.track('k', other);
    release();
    await store.cancelJob('j');
    // The notice arrives at once; the reason is read from the job's record first.
    for (let i = 0; i < 40 && !a.signal.aborted; i++) await sleep(5);
    expect(a.signal.aborted).toBe(true);
    expect(code(a.signal.reason)).toBe('JOB_CANCELLED');
    expect(b.signal.aborted).toBe(false);
    expect(other.signal.aborted).toBe(false);
    await watch.close();
  });

  it('finds a cancel at the next check where the store cannot tell', async () => {
    const inner = memoryStore();
    const store = { cancelledJobs: inner.cancelledJobs.bind(inner) };
    await inner.createJob({ id: 'j', name: 'x', params: {}, transport: 'memory', stageCount: 1 });
    const watch = new CancelWatch({ store, intervalMs: 50 });
    await watch.start();
    const controller = new AbortController();
    watch.track('j', controller);
    await inner.cancelJob('j');
    expect(controller.signal.aborted).toBe(false);
    for (let i = 0; i < 40 && !controller.signal.aborted; i++) await sleep(25);
    expect(controller.signal.aborted).toBe(true);
    expect(code(controller.signal.reason)).toBe('JOB_CANCELLED');
    await watch.close();
  });
});

describe('CancelWatch reasons', () => {
  it('aborts the handlers of a job its deadline cancelled with DEADLINE_EXCEEDED', async () => {
    const store = memoryStore();
    const deadlineAt = new Date(Date.now() - 1000);
    await store.createJob({
      id: 'late',
      name: 'x',
      params: {},
      transport: 'memory',
      stageCount: 1,
      deadlineAt,
    });
    const watch = new CancelWatch({ store, intervalMs: 60_000 });
    await watch.start();
    const controller = new AbortController();
    watch.track('late', controller);
    expect(await store.expireJobs(10)).toEqual(['late']);
    for (let i = 0; i < 40 && !controller.signal.aborted; i++) await sleep(5);
    expect(code(controller.signal.reason)).toBe('DEADLINE_EXCEEDED');
    expect((controller.signal.reason as Error).message).toBe(
      `job late did not finish by its deadline ${deadlineAt.toISOString()} and was cancelled`,
    );
    await watch.close();
  });

  it('checks a cancelled job once, and aborts at once a handler of it that registers late', async () => {
    const inner = memoryStore();
    let checked: string[][] = [];
    const store = {
      cancelledJobs: (ids: readonly string[]) => {
        checked.push([...ids]);
        return inner.cancelledJobs(ids);
      },
    };
    await inner.createJob({ id: 'j', name: 'x', params: {}, transport: 'memory', stageCount: 1 });
    const watch = new CancelWatch({ store, intervalMs: 10 });
    const first = new AbortController();
    watch.track('j', first);
    await inner.cancelJob('j');
    await watch.check();
    expect(code(first.signal.reason)).toBe('JOB_CANCELLED');
    checked = [];
    await watch.check();
    expect(checked).toEqual([]);
    const late = new AbortController();
    watch.track('j', late);
    expect(code(late.signal.reason)).toBe('JOB_CANCELLED');
    await watch.close();
  });
});

describe('replay that re-runs what it replays', () => {
  it('re-opens a dead-lettered task before moving it, and keeps what cannot re-run', async () => {
    const store = memoryStore();
    const transport = memoryTransport({ visibilityTimeoutMs: 1000 }) as Transport &
      DeadLetterCapability;
    await ranJob(store, 'j', 3, [1]);
    const message = (index: number) =>
      encodeEnvelope({ v: 1, kind: 'task', jobId: 'j', stage: 0, taskId: taskId('j', 0, index) });
    await transport.send('task', [
      { body: message(1) },
      { body: message(0) },
      { body: 'not an envelope' },
      { body: encodeEnvelope({ v: 1, kind: 'stage', jobId: 'j', stage: 1 }) },
    ]);
    const got = await transport.receive('task', { maxMessages: 10 });
    await transport.settle(
      got.map((m) => ({ message: m, action: 'deadLetter' as const, reason: 'Failed' })),
    );

    expect(await replayDeadLetters({ store, transport }, 'task')).toBe(1);
    expect(await store.getTask(taskId('j', 0, 1))).toMatchObject({
      status: 'pending',
      attempts: 0,
    });
    expect(await store.getJob('j')).toMatchObject({ status: 'running' });
    const [back] = await transport.receive('task', { maxMessages: 10 });
    expect(back?.body).toBe(message(1));
    // The succeeded task, the malformed message and the finished job's stage message stay.
    expect((await transport.listDeadLetters('task')).map((d) => d.body).sort()).toEqual(
      [
        message(0),
        'not an envelope',
        encodeEnvelope({ v: 1, kind: 'stage', jobId: 'j', stage: 1 }),
      ].sort(),
    );
    await transport.close();
  });

  it('refuses a pack holding a task that succeeded, re-opening none of it', async () => {
    const store = memoryStore();
    await ranJob(store, 'p', 3, [0]);
    const pack = encodeEnvelope({
      v: 1,
      kind: 'tasks',
      jobId: 'p',
      stage: 0,
      tasks: [{ index: 0 }, { index: 1 }],
    });
    expect(
      await acceptForReplay(store, [{ queue: 'task', id: '1', body: pack, reason: 'x' }]),
    ).toEqual([false]);
    expect((await store.getTask(taskId('p', 0, 0)))?.status).toBe('failed');
  });
});
