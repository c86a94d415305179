/**
 * The part of the store conformance suite about operating jobs: listing, re-opening failed
 * tasks, learning of cancellations and purging. Run by {@link storeConformance} for every store.
 * @module
 */
import { expect, it } from 'vitest';
import { isSwitchyardError } from '../errors.js';
import { taskId } from '../ids.js';
import type { JobStatus, Store, TaskOutcome } from '../store.js';

export function storeOperationsConformance(getStore: () => Store, timeout: number): void {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const ref = (jobId: string, stage: number, index: number) => ({
    jobId,
    stage,
    index,
    taskId: taskId(jobId, stage, index),
  });
  const ok = (jobId: string, stage: number, index: number): TaskOutcome => ({
    ...ref(jobId, stage, index),
    status: 'succeeded',
    result: { index },
  });
  const bad = (jobId: string, stage: number, index: number): TaskOutcome => ({
    ...ref(jobId, stage, index),
    status: 'failed',
    error: { name: 'Error', message: `task ${index} failed` },
  });
  async function job(
    id: string,
    options: { name?: string; transport?: string; stageCount?: number } = {},
  ) {
    await getStore().createJob({
      id,
      name: options.name ?? 'etl',
      params: {},
      transport: options.transport ?? 'memory',
      stageCount: options.stageCount ?? 1,
    });
  }
  async function stage(jobId: string, index: number, count: number) {
    const store = getStore();
    await store.startStage(jobId, index, `s${index}`);
    await store.insertTasks(
      jobId,
      index,
      Array.from({ length: count }, (_, i) => ({ index: i, input: { i }, batchId: `b${i % 2}` })),
    );
    await store.sealStage(jobId, index, count);
  }
  /** A one-stage job of `count` tasks whose `failing` tasks failed; the job finished failed. */
  async function failedJob(id: string, count: number, failing: readonly number[]) {
    const store = getStore();
    await job(id);
    await stage(id, 0, count);
    await store.claimTasks(Array.from({ length: count }, (_, i) => ref(id, 0, i)));
    const { completedStages } = await store.completeTasks(
      Array.from({ length: count }, (_, i) => (failing.includes(i) ? bad(id, 0, i) : ok(id, 0, i))),
    );
    expect(completedStages).toHaveLength(1);
    await store.finishJob(id, { status: 'failed', error: { name: 'JobFailed', message: 'x' } });
  }
  const code = (err: unknown) => (isSwitchyardError(err) ? err.code : String(err));

  it('lists jobs newest first with a keyset cursor and filters', { timeout }, async () => {
    const store = getStore();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const id = `list-${i}`;
      ids.push(id);
      await job(id, { name: i % 2 ? 'odd' : 'even', transport: i < 5 ? 'memory' : 'other' });
      await sleep(3);
    }
    await store.startStage('list-1', 0, 's');
    await store.finishJob('list-1', { status: 'failed', error: { name: 'E', message: 'no' } });
    await store.cancelJob('list-2');

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.listJobs({ limit: 3, ...(cursor ? { cursor } : {}) });
      expect(page.jobs.length).toBeLessThanOrEqual(3);
      seen.push(...page.jobs.map((j) => j.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual([...ids].reverse());
    expect(pages).toBe(3);

    const [failed] = (await store.listJobs({ status: 'failed' })).jobs;
    expect(failed).toMatchObject({ id: 'list-1', name: 'odd', status: 'failed', currentStage: 0 });
    expect(failed?.error).toEqual({ name: 'E', message: 'no' });
    expect(failed?.createdAt).toBeInstanceOf(Date);
    expect(failed?.finishedAt).toBeInstanceOf(Date);
    const statuses: JobStatus[] = ['failed', 'cancelled'];
    expect((await store.listJobs({ status: statuses })).jobs.map((j) => j.id)).toEqual([
      'list-2',
      'list-1',
    ]);
    expect((await store.listJobs({ name: 'odd' })).jobs.map((j) => j.id)).toEqual([
      'list-5',
      'list-3',
      'list-1',
    ]);
    expect((await store.listJobs({ transport: 'other' })).jobs.map((j) => j.id)).toEqual([
      'list-6',
      'list-5',
    ]);
    const all = (await store.listJobs()).jobs;
    const third = all.find((j) => j.id === 'list-3')!;
    const window = await store.listJobs({
      createdAfter: third.createdAt,
      createdBefore: all.find((j) => j.id === 'list-5')!.createdAt,
    });
    expect(window.jobs.map((j) => j.id)).toEqual(['list-4', 'list-3']);
    expect((await store.listJobs({ name: 'nope' })).jobs).toEqual([]);
    const filtered = await store.listJobs({ status: 'queued', limit: 2 });
    expect(filtered.jobs.map((j) => j.id)).toEqual(['list-6', 'list-5']);
    const rest = await store.listJobs({ status: 'queued', limit: 2, cursor: filtered.nextCursor! });
    expect(rest.jobs.map((j) => j.id)).toEqual(['list-4', 'list-3']);
    await expect(store.listJobs({ cursor: 'not a cursor' })).rejects.toSatisfy(
      (err) => code(err) === 'INVALID_INPUT',
    );
  });

  it('keeps a job’s priority: read back, listed, filtered on, and unchanged by a resubmit', {
    timeout,
  }, async () => {
    const store = getStore();
    const base = { name: 'etl', params: {}, transport: 'memory', stageCount: 1 };
    await store.createJob({ ...base, id: 'prio-high', priority: 'high' });
    await store.createJob({
      ...base,
      id: 'prio-low',
      priority: 'low',
      runAt: new Date(Date.now() + 60_000),
    });
    await store.createJob({ ...base, id: 'prio-normal', priority: 'normal' });
    await store.createJob({ ...base, id: 'prio-default' });
    expect((await store.getJob('prio-high'))?.priority).toBe('high');
    expect((await store.getJob('prio-low'))?.priority).toBe('low');
    // `normal` is the default and is not stored as a value of its own.
    expect((await store.getJob('prio-normal'))?.priority).toBeUndefined();
    expect((await store.getJob('prio-default'))?.priority).toBeUndefined();
    const again = await store.createJob({ ...base, id: 'prio-high', priority: 'low' });
    expect(again).toMatchObject({ created: false, job: { priority: 'high' } });
    const { jobs } = await store.listJobs({ name: 'etl' });
    const listed = Object.fromEntries(jobs.map((j) => [j.id, j.priority]));
    expect(listed).toEqual({
      'prio-high': 'high',
      'prio-low': 'low',
      'prio-normal': undefined,
      'prio-default': undefined,
    });
    // The filter: `normal` matches jobs submitted without a priority too.
    const ids = async (priority: 'high' | 'normal' | 'low') =>
      (await store.listJobs({ name: 'etl', priority })).jobs.map((j) => j.id).sort();
    expect(await ids('high')).toEqual(['prio-high']);
    expect(await ids('low')).toEqual(['prio-low']);
    expect(await ids('normal')).toEqual(['prio-default', 'prio-normal']);
  });

  it('pages through jobs created at the same instant without skipping any', {
    timeout,
  }, async () => {
    const store = getStore();
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => job(`same-${String(i).padStart(2, '0')}`)),
    );
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 20; pages++) {
      const page = await store.listJobs({ limit: 5, ...(cursor ? { cursor } : {}) });
      seen.push(...page.jobs.map((j) => j.id));
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toHaveLength(12);
    expect(new Set(seen).size).toBe(12);
  });

  it('filters a job’s tasks by send batch', { timeout }, async () => {
    const store = getStore();
    await job('batched');
    await stage('batched', 0, 5);
    const page = await store.listTasks('batched', { batchId: 'b1' });
    expect(page.tasks.map((t) => t.index)).toEqual([1, 3]);
    const first = await store.listTasks('batched', { batchId: 'b0', limit: 2 });
    expect(first.tasks.map((t) => t.index)).toEqual([0, 2]);
    const second = await store.listTasks('batched', {
      batchId: 'b0',
      limit: 2,
      cursor: first.nextCursor!,
    });
    expect(second.tasks.map((t) => t.index)).toEqual([4]);
  });

  it('tells which of a set of jobs are cancelled or gone', { timeout }, async () => {
    const store = getStore();
    await job('c-run');
    await job('c-cancel');
    await store.cancelJob('c-cancel');
    expect((await store.cancelledJobs(['c-run', 'c-cancel', 'c-gone'])).sort()).toEqual([
      'c-cancel',
      'c-gone',
    ]);
    expect(await store.cancelledJobs([])).toEqual([]);
  });

  it('tells cancel listeners of each cancelled job at once, where it can', {
    timeout,
  }, async () => {
    const store = getStore();
    if (!store.onCancel) return;
    const heard: string[] = [];
    const stop = await store.onCancel((id) => heard.push(id));
    await job('n-1');
    await job('n-2');
    expect(await store.cancelJob('n-1')).toBe(true);
    expect(await store.cancelJob('n-1')).toBe(false);
    for (let i = 0; i < 100 && heard.length === 0; i++) await sleep(20);
    expect(heard).toEqual(['n-1']);
    await stop();
    await store.cancelJob('n-2');
    await sleep(100);
    expect(heard).toEqual(['n-1']);
  });

  it('re-opens a failed job’s failed tasks; the barrier completes the stage once more', {
    timeout,
  }, async () => {
    const store = getStore();
    await failedJob('rerun', 5, [1, 3]);
    const reopened = await store.reopenTasks({ jobId: 'rerun' });
    expect(reopened.stage).toBe(0);
    expect(reopened.taskIds).toEqual([taskId('rerun', 0, 1), taskId('rerun', 0, 3)]);
    expect(reopened.job).toMatchObject({ status: 'running', currentStage: 0 });
    expect(reopened.job.finishedAt).toBeUndefined();
    expect(reopened.job.error).toBeUndefined();
    const [st] = await store.getStages('rerun');
    expect(st).toMatchObject({ status: 'sealed', succeeded: 3, failed: 0, total: 5 });
    const task = await store.getTask(taskId('rerun', 0, 1));
    expect(task).toMatchObject({ status: 'pending', attempts: 0, timeouts: 0, input: { i: 1 } });
    expect(task?.error).toBeUndefined();
    expect(task?.finishedAt).toBeUndefined();
    // Nothing left to re-open: a second call changes nothing.
    expect((await store.reopenTasks({ jobId: 'rerun' })).taskIds).toEqual([]);

    const claims = await store.claimTasks([ref('rerun', 0, 1), ref('rerun', 0, 3)]);
    expect(claims.map((c) => [c.outcome, c.attempt])).toEqual([
      ['run', 1],
      ['run', 1],
    ]);
    // Duplicate outcomes racing: the stage completes exactly once, counting each task once.
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        store.completeTasks([ok('rerun', 0, i % 2 ? 1 : 3), ok('rerun', 0, i % 2 ? 3 : 1)]),
      ),
    );
    expect(results.flatMap((r) => r.completedStages)).toEqual([
      { jobId: 'rerun', stage: 0, succeeded: 5, failed: 0, total: 5 },
    ]);
    expect(results.flatMap((r) => r.applied).sort()).toEqual(reopened.taskIds);
    expect(await store.finishJob('rerun', { status: 'succeeded', result: 1 })).toBe(true);
    expect(await store.getJob('rerun')).toMatchObject({ status: 'succeeded', result: 1 });
  });

  it('re-opens named tasks only, and refuses tasks of several stages', { timeout }, async () => {
    const store = getStore();
    await failedJob('named', 4, [0, 1, 2]);
    const reopened = await store.reopenTasks({
      jobId: 'named',
      taskIds: [taskId('named', 0, 2), taskId('named', 0, 3)],
    });
    // Task 3 succeeded: only the failed task among those named re-opens.
    expect(reopened.taskIds).toEqual([taskId('named', 0, 2)]);
    expect((await store.getStages('named'))[0]).toMatchObject({ status: 'sealed', failed: 2 });
    expect((await store.getTask(taskId('named', 0, 0)))?.status).toBe('failed');
    await expect(
      store.reopenTasks({
        jobId: 'named',
        taskIds: [taskId('named', 0, 0), taskId('named', 1, 0)],
      }),
    ).rejects.toSatisfy((err) => code(err) === 'INVALID_INPUT');
    await expect(
      store.reopenTasks({ jobId: 'named', taskIds: [taskId('other-job', 0, 0)] }),
    ).rejects.toSatisfy((err) => code(err) === 'INVALID_INPUT');
    await expect(store.reopenTasks({ jobId: 'no-such-job' })).rejects.toSatisfy(
      (err) => code(err) === 'JOB_NOT_FOUND',
    );
  });

  it('re-opens exactly once under concurrent calls', { timeout }, async () => {
    const store = getStore();
    await failedJob('racy', 6, [0, 2, 4]);
    const calls = await Promise.all(
      Array.from({ length: 5 }, () => store.reopenTasks({ jobId: 'racy' })),
    );
    expect(calls.flatMap((c) => c.taskIds).sort()).toEqual(
      [0, 2, 4].map((i) => taskId('racy', 0, i)),
    );
    expect(calls.filter((c) => c.taskIds.length > 0)).toHaveLength(1);
    expect((await store.getStages('racy'))[0]).toMatchObject({ failed: 0, succeeded: 3 });
  });

  it('re-opens an earlier stage of a succeeded job and drops the stages after it', {
    timeout,
  }, async () => {
    const store = getStore();
    await job('tolerated', { stageCount: 2 });
    await stage('tolerated', 0, 3);
    await store.completeTasks([
      ok('tolerated', 0, 0),
      bad('tolerated', 0, 1),
      ok('tolerated', 0, 2),
    ]);
    await stage('tolerated', 1, 2);
    await store.completeTasks([ok('tolerated', 1, 0), ok('tolerated', 1, 1)]);
    await store.finishJob('tolerated', { status: 'succeeded', result: 'done' });

    const reopened = await store.reopenTasks({ jobId: 'tolerated' });
    expect(reopened).toMatchObject({ stage: 0, taskIds: [taskId('tolerated', 0, 1)] });
    expect(reopened.job).toMatchObject({ status: 'running', currentStage: 0 });
    expect(reopened.job.result).toBeUndefined();
    const stages = await store.getStages('tolerated');
    expect(stages.map((s) => [s.index, s.status])).toEqual([[0, 'sealed']]);
    expect(await store.getTask(taskId('tolerated', 1, 0))).toBeUndefined();
    expect((await store.listTasks('tolerated')).tasks).toHaveLength(3);

    const done = await store.completeTasks([ok('tolerated', 0, 1)]);
    expect(done.completedStages).toHaveLength(1);
    const advances = await Promise.all([
      store.startStage('tolerated', 1, 's1'),
      store.startStage('tolerated', 1, 's1'),
    ]);
    expect(advances.filter((a) => a.advanced)).toHaveLength(1);
    expect((await store.getStages('tolerated'))[1]).toMatchObject({
      status: 'fanning_out',
      created: 0,
    });
  });

  it('re-opens a running job’s failed task only while its stage is open', { timeout }, async () => {
    const store = getStore();
    await job('live');
    await stage('live', 0, 3);
    await store.completeTasks([bad('live', 0, 0)]);
    const reopened = await store.reopenTasks({ jobId: 'live', taskIds: [taskId('live', 0, 0)] });
    expect(reopened.taskIds).toEqual([taskId('live', 0, 0)]);
    expect((await store.getStages('live'))[0]).toMatchObject({ status: 'sealed', failed: 0 });
    await store.completeTasks([bad('live', 0, 0), ok('live', 0, 1), ok('live', 0, 2)]);
    // The stage completed: its advance is under way, so nothing re-opens.
    expect((await store.reopenTasks({ jobId: 'live' })).taskIds).toEqual([]);
    expect((await store.getStages('live'))[0]?.status).toBe('complete');
  });

  it('never re-opens a cancelled job', { timeout }, async () => {
    const store = getStore();
    await job('gone');
    await stage('gone', 0, 2);
    await store.completeTasks([bad('gone', 0, 0)]);
    await store.cancelJob('gone');
    const result = await store.reopenTasks({ jobId: 'gone' });
    expect(result.taskIds).toEqual([]);
    expect(result.job.status).toBe('cancelled');
    expect((await store.getTask(taskId('gone', 0, 0)))?.status).toBe('failed');
  });

  it('does not re-open a job a purge has started deleting', { timeout }, async () => {
    const store = getStore();
    await failedJob('half-gone', 6, [0, 5]);
    const batch = await store.purgeJobs(
      { finishedBefore: new Date(Date.now() + 1000) },
      { jobs: 1, tasks: 2 },
    );
    expect(batch).toMatchObject({ jobs: 0, tasks: 2, more: true });
    const result = await store.reopenTasks({ jobId: 'half-gone' });
    expect(result.taskIds).toEqual([]);
    expect(result.job.status).toBe('failed');
  });

  it('purges finished jobs in small batches and keeps the metrics’ totals', {
    timeout,
  }, async () => {
    const store = getStore();
    await failedJob('old-failed', 7, [2]);
    await job('old-ok');
    await stage('old-ok', 0, 4);
    await store.claimTasks([ref('old-ok', 0, 0)]);
    await store.claimTasks([ref('old-ok', 0, 0)]);
    await store.completeTasks([0, 1, 2, 3].map((i) => ok('old-ok', 0, i)));
    await store.finishJob('old-ok', { status: 'succeeded' });
    await job('old-cancelled', { name: 'other' });
    await store.cancelJob('old-cancelled');
    await job('still-running');
    await stage('still-running', 0, 3);
    const before = await store.metrics();
    const cutoff = new Date(Date.now() + 1000);

    // Nothing finished before a cutoff in the past.
    expect(await store.purgeJobs({ finishedBefore: new Date(Date.now() - 60_000) })).toEqual({
      jobs: 0,
      tasks: 0,
      more: false,
    });
    const other = await store.purgeJobs({ finishedBefore: cutoff, name: 'other' });
    expect(other).toMatchObject({ jobs: 1, tasks: 0 });
    let jobs = other.jobs;
    let tasks = 0;
    let batches = 0;
    const path = (m: typeof before) => m.find((p) => p.transport === 'memory')!;
    const totals = (m: typeof before) => {
      const p = path(m);
      return { jobs: p.jobs, tasks: p.tasks, retries: p.retries, poisoned: p.poisoned };
    };
    for (;;) {
      const batch = await store.purgeJobs(
        { finishedBefore: cutoff, status: ['succeeded', 'failed'] },
        { jobs: 1, tasks: 3 },
      );
      expect(batch.tasks).toBeLessThanOrEqual(3);
      // The totals hold between batches too (a job whose tasks are partly deleted).
      expect(totals(await store.metrics())).toEqual(totals(before));
      jobs += batch.jobs;
      tasks += batch.tasks;
      batches++;
      if (!batch.more || batches > 20) break;
    }
    expect(batches).toBeGreaterThanOrEqual(4);
    expect({ jobs, tasks }).toEqual({ jobs: 3, tasks: 11 });
    for (const id of ['old-failed', 'old-ok', 'old-cancelled']) {
      expect(await store.getJob(id)).toBeUndefined();
      expect(await store.getStages(id)).toEqual([]);
      expect((await store.listTasks(id)).tasks).toEqual([]);
    }
    expect(await store.getJob('still-running')).toMatchObject({ status: 'running' });
    expect((await store.listTasks('still-running')).tasks).toHaveLength(3);
    expect((await store.listJobs()).jobs.map((j) => j.id)).toEqual(['still-running']);

    const after = await store.metrics();
    expect(path(after).jobs).toEqual(path(before).jobs);
    expect(path(after).tasks).toEqual(path(before).tasks);
    expect(path(after).retries).toBe(path(before).retries);
    expect(path(after).timeouts).toBe(path(before).timeouts);
    expect(path(after).poisoned).toBe(path(before).poisoned);
    expect(path(after).jobLatencyMs.mean).toBeCloseTo(path(before).jobLatencyMs.mean!, 3);
    expect(path(after).tasksPerSecond).toBeCloseTo(path(before).tasksPerSecond!, 3);
    expect(path(after).queueWaitMs.mean).toBeCloseTo(path(before).queueWaitMs.mean!, 3);
  });
}
