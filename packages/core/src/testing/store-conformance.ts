import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { taskId } from '../ids.js';
import type { ReleasedTasks, Store, TaskOutcome } from '../store.js';
import { storeFlowConformance } from './store-flow-conformance.js';
import { storeOperationsConformance } from './store-operations-conformance.js';

/**
 * The suite every store driver passes against its real backend. `factory` is called before each
 * test and must return an initialised-or-initialisable store on fresh, empty tables; it is closed
 * after the test.
 *
 * @example
 * ```ts
 * storeConformance('memory', () => memoryStore());
 * ```
 */
export function storeConformance(
  name: string,
  factory: () => Store | Promise<Store>,
  options: {
    testTimeoutMs?: number;
    /**
     * The store offers flow control (`FlowControlCapability`: key slots, rate limits), checked
     * by its own tests. @defaultValue true
     */
    flowControl?: boolean;
  } = {},
): void {
  const timeout = options.testTimeoutMs ?? 30_000;

  describe(`store conformance: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await factory();
      await store.init?.();
    });
    afterEach(async () => {
      await store.close();
    });

    const newJob = (id = 'job-1', transport = 'memory', stageCount = 2) =>
      store.createJob({ id, name: 'hello_world', params: { n: 3 }, transport, stageCount });
    const ref = (jobId: string, stage: number, index: number) => ({
      jobId,
      stage,
      index,
      taskId: taskId(jobId, stage, index),
    });
    async function stageWithTasks(jobId: string, stage: number, count: number, seal = true) {
      await store.startStage(jobId, stage, `s${stage}`);
      await store.insertTasks(
        jobId,
        stage,
        Array.from({ length: count }, (_, index) => ({ index, input: { index } })),
      );
      if (seal) await store.sealStage(jobId, stage, count);
    }
    const ok = (
      jobId: string,
      stage: number,
      index: number,
      result: unknown = index,
    ): TaskOutcome => ({
      ...ref(jobId, stage, index),
      status: 'succeeded',
      result,
    });

    it('creates a job once and returns the stored job on resubmit', { timeout }, async () => {
      const first = await newJob();
      expect(first.created).toBe(true);
      expect(first.job).toMatchObject({
        id: 'job-1',
        name: 'hello_world',
        params: { n: 3 },
        transport: 'memory',
        status: 'queued',
        currentStage: -1,
        stageCount: 2,
      });
      expect(first.job.createdAt).toBeInstanceOf(Date);
      const again = await store.createJob({
        id: 'job-1',
        name: 'hello_world',
        params: { n: 999 },
        transport: 'other',
        stageCount: 2,
      });
      expect(again.created).toBe(false);
      expect(again.job.params).toEqual({ n: 3 });
      expect(await store.getJob('nope')).toBeUndefined();
    });

    it('keeps awkward strings intact through the batch statements', { timeout }, async () => {
      // Quotes, backslashes, braces, commas, whitespace, the word NULL: what array literals and
      // JSON escaping must get right.
      const odd = ['NULL', '', ' ', '"', '\\', '{a,b}', 'x\\"y', 'ünï🚂', '\\u0000', 'null'];
      const jobId = 'j "odd", {NULL}\\';
      await store.createJob({
        id: jobId,
        name: 'x',
        params: {},
        transport: 'memory',
        stageCount: 1,
      });
      await store.startStage(jobId, 0, 's');
      await store.insertTasks(
        jobId,
        0,
        odd.map((text, index) => ({ index, input: { text }, batchId: text })),
      );
      const claims = await store.claimTasks(
        odd.map((_, index) => ({ ...ref(jobId, 0, index), withInput: true })),
      );
      expect(claims.map((c) => c.input)).toEqual(odd.map((text) => ({ text })));
      await store.completeTasks(
        odd.map((text, index) =>
          index % 2 === 0
            ? { ...ref(jobId, 0, index), status: 'succeeded' as const, result: text }
            : {
                ...ref(jobId, 0, index),
                status: 'failed' as const,
                error: { name: text, message: text },
              },
        ),
      );
      for (const [index, text] of odd.entries()) {
        const task = await store.getTask(taskId(jobId, 0, index));
        expect(task).toMatchObject({ jobId, input: { text }, batchId: text });
        if (index % 2 === 0) expect(task?.result).toBe(text);
        else expect(task?.error).toEqual({ name: text, message: text });
      }
      expect((await store.getStages(jobId))[0]).toMatchObject({ succeeded: 5, failed: 5 });
    });

    it('stores JSON values intact, hostile keys and characters included', { timeout }, async () => {
      const params = JSON.parse(
        '{"__proto__":{"polluted":true},"sql":"\'); DROP TABLE jobs; --","deep":[[[{"x":null}]]],"u":"\\u0000ünï🚂","big":1e300}',
      );
      await store.createJob({
        id: 'j-hostile',
        name: 'x',
        params,
        transport: 'memory',
        stageCount: 1,
      });
      const job = await store.getJob('j-hostile');
      expect(JSON.stringify(job?.params)).toBe(JSON.stringify(params));
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('advances a stage by compare-and-set, exactly once under concurrency', {
      timeout,
    }, async () => {
      await newJob();
      const results = await Promise.all(
        Array.from({ length: 10 }, () => store.startStage('job-1', 0, 'greet')),
      );
      expect(results.filter((r) => r.advanced)).toHaveLength(1);
      for (const r of results) expect(r.job.currentStage).toBe(0);
      const job = await store.getJob('job-1');
      expect(job).toMatchObject({ status: 'running', currentStage: 0 });
      expect(job?.startedAt).toBeInstanceOf(Date);
      const [stage] = await store.getStages('job-1');
      expect(stage).toMatchObject({ index: 0, name: 'greet', status: 'fanning_out', total: null });

      expect((await store.startStage('job-1', 1, 'reply')).advanced).toBe(true);
      const stale = await store.startStage('job-1', 0, 'greet');
      expect(stale.advanced).toBe(false);
      expect(stale.job.currentStage).toBe(1);
      const skip = await store.startStage('job-1', 3, 'nope');
      expect(skip.advanced).toBe(false);
      expect((await store.getJob('job-1'))?.currentStage).toBe(1);
    });

    it('inserts tasks skipping existing ones, with deterministic ids', { timeout }, async () => {
      await newJob();
      await store.startStage('job-1', 0, 'greet');
      expect(
        await store.insertTasks(
          'job-1',
          0,
          Array.from({ length: 10 }, (_, index) => ({ index, input: { index } })),
        ),
      ).toBe(10);
      expect(
        await store.insertTasks(
          'job-1',
          0,
          Array.from({ length: 10 }, (_, i) => ({ index: i + 5, input: { index: -1 } })),
        ),
      ).toBe(5);
      const [stage] = await store.getStages('job-1');
      expect(stage?.created).toBe(15);
      const t7 = await store.getTask(taskId('job-1', 0, 7));
      expect(t7).toMatchObject({
        jobId: 'job-1',
        stage: 0,
        index: 7,
        status: 'pending',
        attempts: 0,
        input: { index: 7 },
      });
    });

    it('claims nothing for a ref whose job or stage is not its task id’s', {
      timeout,
    }, async () => {
      await newJob();
      await stageWithTasks('job-1', 0, 3);
      const claims = await store.claimTasks([
        { ...ref('job-1', 0, 1), jobId: 'other-job' },
        { ...ref('job-1', 0, 2), stage: 1 },
      ]);
      expect(claims.map((c) => c.outcome)).toEqual(['missing', 'missing']);
      expect(await store.getTask(taskId('job-1', 0, 1))).toMatchObject({ status: 'pending' });
      expect(await store.getTask(taskId('job-1', 0, 2))).toMatchObject({ status: 'pending' });
    });

    it('claims attempts only for runnable tasks', { timeout }, async () => {
      await newJob();
      await stageWithTasks('job-1', 0, 3);
      const claims = await store.claimTasks([
        ref('job-1', 0, 0),
        ref('job-1', 0, 1),
        ref('job-1', 0, 99),
      ]);
      expect(claims.map((c) => c.outcome)).toEqual(['run', 'run', 'missing']);
      expect(claims[0]).toEqual({ taskId: taskId('job-1', 0, 0), outcome: 'run', attempt: 1 });
      const running = await store.getTask(taskId('job-1', 0, 0));
      expect(running).toMatchObject({ status: 'running', attempts: 1 });
      expect(running?.startedAt).toBeInstanceOf(Date);
      await store.completeTasks([ok('job-1', 0, 0)]);
      const again = await store.claimTasks([
        ref('job-1', 0, 0),
        { ...ref('job-1', 0, 1), withInput: true },
      ]);
      expect(again.map((c) => c.outcome)).toEqual(['terminal', 'run']);
      expect(again[1]).toMatchObject({ attempt: 2, input: { index: 1 } });
      await store.cancelJob('job-1');
      expect((await store.claimTasks([ref('job-1', 0, 2)]))[0]?.outcome).toMatch(
        /terminal|job-inactive/,
      );
    });

    it('admits without recording the attempt; the outcome or the next claim records it', {
      timeout,
    }, async () => {
      await newJob();
      await stageWithTasks('job-1', 0, 3);
      const admit = (index: number, extra: object = {}) => ({
        ...ref('job-1', 0, index),
        admitOnly: true,
        ...extra,
      });
      const admitted = await store.claimTasks([admit(0), admit(1, { withInput: true }), admit(9)]);
      expect(admitted.map((c) => [c.outcome, c.attempt])).toEqual([
        ['run', 1],
        ['run', 1],
        ['missing', undefined],
      ]);
      expect(admitted[1]?.input).toEqual({ index: 1 });
      expect(await store.getTask(taskId('job-1', 0, 0))).toMatchObject({
        status: 'pending',
        attempts: 0,
      });
      expect((await store.getStages('job-1'))[0]?.running).toBe(2);
      // Task 0 succeeds on its admitted attempt; task 1's crashed, its redelivery is claimed.
      const startedAt = new Date(Date.now() - 60_000);
      await store.completeTasks([{ ...ok('job-1', 0, 0), attempt: 1, startedAt }]);
      const t0 = await store.getTask(taskId('job-1', 0, 0));
      expect(t0).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect(t0?.startedAt?.getTime()).toBe(startedAt.getTime());
      // One of the two admitted attempts ended.
      expect((await store.getStages('job-1'))[0]?.running).toBe(1);
      const [redelivered] = await store.claimTasks([{ ...ref('job-1', 0, 1), minAttempt: 2 }]);
      expect(redelivered).toMatchObject({ outcome: 'run', attempt: 2 });
      expect(await store.getTask(taskId('job-1', 0, 1))).toMatchObject({
        status: 'running',
        attempts: 2,
      });
      await store.retryTasks([
        { ...ref('job-1', 0, 1), error: { name: 'E', message: 'flaky' }, attempt: 2 },
      ]);
      expect((await store.claimTasks([admit(1)]))[0]).toMatchObject({ outcome: 'run', attempt: 3 });
      await store.completeTasks([ok('job-1', 0, 2)]);
      expect((await store.claimTasks([admit(2)]))[0]?.outcome).toBe('terminal');
      await store.cancelJob('job-1');
      expect((await store.claimTasks([admit(1)]))[0]?.outcome).toMatch(/terminal|job-inactive/);
    });

    it('admits packs as a whole while the job runs and the stage is open (admitPacks, optional)', {
      timeout,
    }, async () => {
      if (!store.admitPacks) return;
      const admitPacks = store.admitPacks.bind(store);
      expect(await admitPacks([])).toEqual([]);
      await newJob();
      await stageWithTasks('job-1', 0, 3);
      await newJob('job-queued');
      const pack = (jobId: string, stage: number, tasks: number) => ({ jobId, stage, tasks });
      expect(
        await admitPacks([
          pack('job-1', 0, 2),
          pack('job-queued', 0, 4),
          pack('job-1', 0, 1),
          pack('missing', 0, 1),
          pack('job-1', 1, 5),
        ]),
      ).toEqual([true, false, true, false, false]);
      // Only the running count moves: the tasks are untouched until their outcomes.
      expect((await store.getStages('job-1'))[0]?.running).toBe(3);
      // A duplicate delivery of a pack is admitted and counted too (nothing per task is read)...
      expect(await admitPacks([pack('job-1', 0, 1)])).toEqual([true]);
      const page = await store.listTasks('job-1');
      expect(page.tasks.map((t) => [t.status, t.attempts])).toEqual([
        ['pending', 0],
        ['pending', 0],
        ['pending', 0],
      ]);
      await store.completeTasks([0, 1, 2].map((i) => ({ ...ok('job-1', 0, i), attempt: 1 })));
      // ...until the stage completes: a complete stage runs nothing.
      const [stage] = await store.getStages('job-1');
      expect(stage).toMatchObject({ status: 'complete', running: 0, succeeded: 3 });
      expect((await store.listTasks('job-1')).tasks.every((t) => t.attempts === 1)).toBe(true);
      // A late duplicate of a pack of the completed stage is refused.
      expect(await admitPacks([pack('job-1', 0, 3)])).toEqual([false]);
      await newJob('job-2');
      await stageWithTasks('job-2', 0, 2);
      await store.cancelJob('job-2');
      expect(await admitPacks([pack('job-2', 0, 2)])).toEqual([false]);
    });

    it('counts each terminal transition once and reports the stage complete once', {
      timeout,
    }, async () => {
      await newJob();
      await stageWithTasks('job-1', 0, 3);
      const a = await store.completeTasks([ok('job-1', 0, 0), ok('job-1', 0, 1)]);
      expect(a.applied.sort()).toEqual([taskId('job-1', 0, 0), taskId('job-1', 0, 1)].sort());
      expect(a.completedStages).toEqual([]);
      const dup = await store.completeTasks([ok('job-1', 0, 0, 'other'), ok('job-1', 0, 1)]);
      expect(dup).toEqual({ applied: [], completedStages: [] });
      expect((await store.getTask(taskId('job-1', 0, 0)))?.result).toBe(0);
      const last = await store.completeTasks([
        { ...ref('job-1', 0, 2), status: 'failed', error: { name: 'Error', message: 'boom' } },
      ]);
      expect(last.completedStages).toEqual([
        { jobId: 'job-1', stage: 0, succeeded: 2, failed: 1, total: 3 },
      ]);
      expect((await store.completeTasks([ok('job-1', 0, 2)])).completedStages).toEqual([]);
      const [stage] = await store.getStages('job-1');
      expect(stage).toMatchObject({ status: 'complete', succeeded: 2, failed: 1, total: 3 });
      expect(stage?.completedAt).toBeInstanceOf(Date);
      const failed = await store.getTask(taskId('job-1', 0, 2));
      expect(failed).toMatchObject({ status: 'failed', error: { message: 'boom' } });
      expect(failed?.finishedAt).toBeInstanceOf(Date);
    });

    it('releases a windowed stage a window at a time, each index to one caller (releaseTasks)', {
      timeout,
    }, async () => {
      await newJob();
      await stageWithTasks('job-1', 0, 6, false);
      const window = (fanOut?: boolean) => ({
        jobId: 'job-1',
        stage: 0,
        window: 2,
        ...(fanOut ? { fanOut } : {}),
      });
      const indexes = (released: ReleasedTasks[]) =>
        released.flatMap((r) => r.tasks.map((t) => t.index));
      // A stage its fan-out did not window is left alone: its tasks were all sent.
      expect(await store.releaseTasks([window()])).toEqual([]);
      expect((await store.getStages('job-1'))[0]?.released).toBeNull();
      // The fan-out's release windows the stage: the first two tasks, with their inputs.
      expect(await store.releaseTasks([window(true)])).toEqual([
        {
          jobId: 'job-1',
          stage: 0,
          tasks: [
            { index: 0, input: { index: 0 } },
            { index: 1, input: { index: 1 } },
          ],
        },
      ]);
      expect((await store.getStages('job-1'))[0]?.released).toBe(2);
      // metrics() counts the created tasks not released yet, per path.
      const waitingForWindow = async () =>
        (await store.metrics()).find((m) => m.transport === 'memory')?.waitingForWindow;
      expect(await waitingForWindow()).toBe(4);
      // Nothing finished: nothing more to release, however often asked.
      expect(await store.releaseTasks([window(true), window()])).toEqual([]);
      // Each finished task releases the next one; a failure counts as finished.
      await store.completeTasks([ok('job-1', 0, 0)]);
      expect(indexes(await store.releaseTasks([window()]))).toEqual([2]);
      await store.completeTasks([
        { ...ref('job-1', 0, 1), status: 'failed', error: { name: 'Error', message: 'x' } },
        ok('job-1', 0, 2),
      ]);
      // Concurrent releases share the gained indexes: each index goes to exactly one of them.
      const racing = await Promise.all([1, 2, 3].map(() => store.releaseTasks([window()])));
      expect(racing.flatMap(indexes).sort()).toEqual([3, 4]);
      // The range never passes the inserted tasks: 6 created, 3 finished, window 2 → 5.
      expect((await store.getStages('job-1'))[0]?.released).toBe(5);
      expect(await waitingForWindow()).toBe(1);
      await Promise.all([3, 4].map((i) => store.completeTasks([ok('job-1', 0, i)])));
      expect(indexes(await store.releaseTasks([window()]))).toEqual([5]);
      await store.insertTasks(
        'job-1',
        0,
        [6, 7, 8].map((index) => ({ index, input: { index } })),
      );
      expect(indexes(await store.releaseTasks([window()]))).toEqual([6]);
    });

    it('counts only the tasks waiting in the transport against the window: a running task has left it (releaseTasks)', {
      timeout,
    }, async () => {
      await newJob();
      await stageWithTasks('job-1', 0, 8);
      const window = { jobId: 'job-1', stage: 0, window: 2 };
      const indexes = (released: ReleasedTasks[]) =>
        released.flatMap((r) => r.tasks.map((t) => t.index));
      expect(indexes(await store.releaseTasks([{ ...window, fanOut: true }]))).toEqual([0, 1]);
      // Both released tasks taken by workers: two more may wait, before anything finishes.
      await store.claimTasks([ref('job-1', 0, 0), ref('job-1', 0, 1)]);
      expect(indexes(await store.releaseTasks([window]))).toEqual([2, 3]);
      // A finished task neither waits nor runs: its end releases nothing while 2 and 3 wait.
      await store.completeTasks([ok('job-1', 0, 0)]);
      expect(await store.releaseTasks([window])).toEqual([]);
      // A retried task runs no more: it waits for its message again, so it takes a window place.
      await store.retryTasks([{ ...ref('job-1', 0, 1), error: { name: 'Error', message: 'x' } }]);
      expect(await store.releaseTasks([window])).toEqual([]);
      // An admitted pack's tasks count as running, like claimed ones.
      if (store.admitPacks) {
        // 1 finished + 2 running + a window of 2: released up to index 5.
        expect(await store.admitPacks([{ jobId: 'job-1', stage: 0, tasks: 2 }])).toEqual([true]);
        expect(indexes(await store.releaseTasks([window]))).toEqual([4]);
      }
    });

    it('releases only pending tasks, and nothing of a stopped job or a complete stage', {
      timeout,
    }, async () => {
      await newJob();
      await stageWithTasks('job-1', 0, 4);
      const window = { jobId: 'job-1', stage: 0, window: 2, fanOut: true };
      expect((await store.releaseTasks([window]))[0]?.tasks.map((t) => t.index)).toEqual([0, 1]);
      // Task 2 already runs (a re-sent message): only task 3 needs one.
      await store.claimTasks([ref('job-1', 0, 2)]);
      await store.completeTasks([ok('job-1', 0, 0), ok('job-1', 0, 1)]);
      expect(await store.releaseTasks([window])).toEqual([
        { jobId: 'job-1', stage: 0, tasks: [{ index: 3, input: { index: 3 } }] },
      ]);
      // A complete stage releases nothing.
      await store.completeTasks([ok('job-1', 0, 2), ok('job-1', 0, 3)]);
      expect(await store.releaseTasks([{ ...window, window: 100 }])).toEqual([]);
      // A cancelled job releases nothing; the other stages of the batch are still answered.
      await newJob('job-2');
      await stageWithTasks('job-2', 0, 3);
      await newJob('job-3');
      await stageWithTasks('job-3', 0, 3);
      await store.cancelJob('job-2');
      const both = await store.releaseTasks([
        { jobId: 'job-2', stage: 0, window: 5, fanOut: true },
        { jobId: 'job-3', stage: 0, window: 1, fanOut: true },
        { jobId: 'missing', stage: 0, window: 1, fanOut: true },
      ]);
      expect(both).toEqual([
        { jobId: 'job-3', stage: 0, tasks: [{ index: 0, input: { index: 0 } }] },
      ]);
      expect((await store.getStages('job-2'))[0]?.released).toBeNull();
    });

    it('never reports an unreleased task lost; a released one counts from its release', {
      timeout,
    }, async () => {
      await newJob('windowed', 'memory', 1);
      await stageWithTasks('windowed', 0, 4);
      await store.releaseTasks([{ jobId: 'windowed', stage: 0, window: 1, fanOut: true }]);
      await sleep(300);
      const lostIn = async (olderThanMs: number) =>
        (
          (await store.findStuck({ olderThanMs, limit: 100 })).find(
            (s) => s.jobId === 'windowed',
          ) as { taskIds: string[] } | undefined
        )?.taskIds ?? [];
      // Only task 0 was released (its message may be lost); 1–3 have no message yet.
      expect(await lostIn(50)).toEqual([taskId('windowed', 0, 0)]);
      await store.completeTasks([ok('windowed', 0, 0)]);
      await store.releaseTasks([{ jobId: 'windowed', stage: 0, window: 1 }]);
      const released = Date.now();
      // Task 1 was inserted long ago but released just now: not lost until it has been silent.
      expect(await lostIn(250)).toEqual([]);
      await sleep(100);
      const elapsed = Date.now() - released;
      expect(await lostIn(Math.floor(elapsed / 2))).toEqual([taskId('windowed', 0, 1)]);
    });

    it('does not complete an unsealed stage; sealing after the last completion completes it once', {
      timeout,
    }, async () => {
      await newJob();
      await stageWithTasks('job-1', 0, 3, false);
      // Four admitted runs, one a duplicate's: the outcomes end three of them.
      const admit = (index: number) => ({ ...ref('job-1', 0, index), admitOnly: true });
      await store.claimTasks([admit(0), admit(1), admit(2), admit(0)]);
      const r = await store.completeTasks([
        ok('job-1', 0, 0),
        ok('job-1', 0, 1),
        ok('job-1', 0, 2),
      ]);
      expect(r.completedStages).toEqual([]);
      expect((await store.getStages('job-1'))[0]?.running).toBe(1);
      expect(await store.sealStage('job-1', 0, 3)).toEqual({
        jobId: 'job-1',
        stage: 0,
        succeeded: 3,
        failed: 0,
        total: 3,
      });
      expect(await store.sealStage('job-1', 0, 3)).toBeUndefined();
      // A complete stage runs nothing.
      expect((await store.getStages('job-1'))[0]).toMatchObject({ status: 'complete', running: 0 });
    });

    it('seals an empty stage as complete', { timeout }, async () => {
      await newJob();
      await store.startStage('job-1', 0, 'greet');
      expect(await store.sealStage('job-1', 0, 0)).toEqual({
        jobId: 'job-1',
        stage: 0,
        succeeded: 0,
        failed: 0,
        total: 0,
      });
    });

    it('keeps the barrier exact under concurrent, duplicated completions racing the seal', {
      timeout: Math.max(timeout, 60_000),
    }, async () => {
      await newJob();
      const n = 300;
      await stageWithTasks('job-1', 0, n, false);
      const outcomes = Array.from({ length: n }, (_, i) => ok('job-1', 0, i));
      const batches: TaskOutcome[][] = [];
      for (let copy = 0; copy < 2; copy++) {
        const shuffled = [...outcomes].sort(() => Math.random() - 0.5);
        for (let i = 0; i < shuffled.length; i += 25) batches.push(shuffled.slice(i, i + 25));
      }
      const calls = batches.map((b) => store.completeTasks(b).then((r) => r));
      const seal = sleep(5).then(() => store.sealStage('job-1', 0, n));
      const results = await Promise.all(calls);
      const sealed = await seal;
      const reports = results.flatMap((r) => r.completedStages).length + (sealed ? 1 : 0);
      expect(reports).toBe(1);
      expect(results.reduce((sum, r) => sum + r.applied.length, 0)).toBe(n);
      const [stage] = await store.getStages('job-1');
      expect(stage).toMatchObject({ status: 'complete', succeeded: n, failed: 0, total: n });
    });

    it('records a failed attempt for retry, keeping attempts and the error', {
      timeout,
    }, async () => {
      await newJob();
      await stageWithTasks('job-1', 0, 1);
      await store.claimTasks([ref('job-1', 0, 0)]);
      await store.retryTasks([
        { ...ref('job-1', 0, 0), error: { name: 'Error', message: 'flaky' }, timedOut: true },
      ]);
      const task = await store.getTask(taskId('job-1', 0, 0));
      expect(task).toMatchObject({
        status: 'pending',
        attempts: 1,
        timeouts: 1,
        error: { message: 'flaky' },
      });
      const [claim] = await store.claimTasks([ref('job-1', 0, 0)]);
      expect(claim?.attempt).toBe(2);
    });

    it('finishes a job once', { timeout }, async () => {
      await newJob();
      await store.startStage('job-1', 0, 'greet');
      expect(await store.finishJob('job-1', { status: 'succeeded', result: { greeted: 3 } })).toBe(
        true,
      );
      expect(
        await store.finishJob('job-1', { status: 'failed', error: { name: 'E', message: 'late' } }),
      ).toBe(false);
      const job = await store.getJob('job-1');
      expect(job).toMatchObject({ status: 'succeeded', result: { greeted: 3 } });
      expect(job?.finishedAt).toBeInstanceOf(Date);
    });

    it('cancels a running job and its open tasks, once', { timeout }, async () => {
      await newJob();
      await stageWithTasks('job-1', 0, 3);
      await store.completeTasks([ok('job-1', 0, 0)]);
      expect(await store.cancelJob('job-1')).toBe(true);
      expect(await store.cancelJob('job-1')).toBe(false);
      expect((await store.getJob('job-1'))?.status).toBe('cancelled');
      const page = await store.listTasks('job-1');
      expect(page.tasks.map((t) => t.status)).toEqual(['succeeded', 'cancelled', 'cancelled']);
      expect(await store.cancelJob('missing')).toBe(false);
    });

    it('pages through tasks in (stage, index) order with filters', { timeout }, async () => {
      await newJob();
      await stageWithTasks('job-1', 0, 250);
      await store.completeTasks(Array.from({ length: 50 }, (_, i) => ok('job-1', 0, i * 2)));
      const seen: number[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.listTasks('job-1', {
          stage: 0,
          limit: 100,
          ...(cursor ? { cursor } : {}),
        });
        seen.push(...page.tasks.map((t) => t.index));
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual(Array.from({ length: 250 }, (_, i) => i));
      const done = await store.listTasks('job-1', { status: 'succeeded', limit: 1000 });
      expect(done.tasks).toHaveLength(50);
      expect(done.nextCursor).toBeUndefined();
      expect((await store.listTasks('job-1', { stage: 1 })).tasks).toEqual([]);
      const resumed = await store.listTasks('job-1', { stage: 0, afterIndex: 199, limit: 10 });
      expect(resumed.tasks.map((t) => t.index)).toEqual([
        200, 201, 202, 203, 204, 205, 206, 207, 208, 209,
      ]);
    });

    it("pages through a stage's succeeded results in index order (listResults, optional)", {
      timeout,
    }, async () => {
      // An optional method: a store without it is served by listTasks, checked above.
      if (!store.listResults) return;
      const listResults = store.listResults.bind(store);
      await newJob();
      await stageWithTasks('job-1', 0, 30);
      await store.completeTasks([
        ...Array.from({ length: 10 }, (_, i) => ok('job-1', 0, i * 3, { n: i * 3 })),
        { ...ref('job-1', 0, 1), status: 'failed', error: { name: 'E', message: 'no' } },
      ]);
      const first = await listResults('job-1', 0, { afterIndex: -1, limit: 4 });
      expect(first).toEqual([0, 3, 6, 9].map((i) => ({ index: i, result: { n: i } })));
      const rest = await listResults('job-1', 0, { afterIndex: 9, limit: 100 });
      expect(rest.map((r) => r.index)).toEqual([12, 15, 18, 21, 24, 27]);
      expect(await listResults('job-1', 1, { afterIndex: -1, limit: 10 })).toEqual([]);
      expect(await listResults('missing', 0, { afterIndex: -1, limit: 10 })).toEqual([]);
    });

    it('aggregates metrics per processing path', { timeout }, async () => {
      await newJob('a', 'memory', 1);
      await newJob('b', 'servicebus', 1);
      await stageWithTasks('a', 0, 2);
      await store.claimTasks([ref('a', 0, 0), ref('a', 0, 1)]);
      await store.retryTasks([{ ...ref('a', 0, 1), error: { name: 'E', message: 'x' } }]);
      await store.claimTasks([ref('a', 0, 1)]);
      await sleep(5);
      await store.completeTasks([
        ok('a', 0, 0),
        { ...ref('a', 0, 1), status: 'failed', error: { name: 'E', message: 'x' } },
      ]);
      await store.finishJob('a', { status: 'failed', error: { name: 'E', message: 'x' } });
      await store.incrementCounter('memory', 'stage-not-advanced', 2);
      await store.incrementCounter('memory', 'stage-not-advanced', 1);
      const metrics = await store.metrics();
      const mem = metrics.find((m) => m.transport === 'memory');
      const sb = metrics.find((m) => m.transport === 'servicebus');
      expect(mem?.jobs).toMatchObject({ total: 1, failed: 1 });
      expect(mem?.tasks).toMatchObject({ total: 2, succeeded: 1, failed: 1 });
      expect(mem?.retries).toBe(1);
      expect(mem?.poisoned).toBe(1);
      expect(mem?.jobLatencyMs.mean).toBeGreaterThan(0);
      expect(mem?.jobLatencyMs.p95).toBeGreaterThan(0);
      expect(mem?.tasksPerSecond).toBeGreaterThan(0);
      expect(mem?.redrives).toEqual({ 'stage-not-advanced': 3 });
      expect(sb?.jobs).toMatchObject({ total: 1, queued: 1 });
    });

    it('finds stuck work of every kind, bounded, never for finished jobs', {
      timeout,
    }, async () => {
      await newJob('not-started', 'memory', 1);
      await newJob('fanout', 'memory', 2);
      await stageWithTasks('fanout', 0, 2, false);
      await newJob('not-advanced', 'memory', 2);
      await stageWithTasks('not-advanced', 0, 1);
      await store.completeTasks([ok('not-advanced', 0, 0)]);
      await newJob('not-finalized', 'memory', 1);
      await stageWithTasks('not-finalized', 0, 1);
      await store.completeTasks([ok('not-finalized', 0, 0)]);
      await newJob('lost', 'servicebus', 1);
      await stageWithTasks('lost', 0, 3);
      await store.completeTasks([ok('lost', 0, 0)]);
      await newJob('done', 'memory', 1);
      await store.startStage('done', 0, 's');
      await store.finishJob('done', { status: 'succeeded' });
      expect(await store.findStuck({ olderThanMs: 60_000, limit: 100 })).toEqual([]);
      await sleep(30);
      const stuck = await store.findStuck({ olderThanMs: 10, limit: 100 });
      const kinds = Object.fromEntries(stuck.map((s) => [s.jobId, s]));
      expect(kinds['not-started']).toMatchObject({ kind: 'job-not-started', transport: 'memory' });
      expect(kinds.fanout).toMatchObject({ kind: 'fanout-incomplete', stage: 0 });
      expect(kinds['not-advanced']).toMatchObject({ kind: 'stage-not-advanced', stage: 0 });
      expect(kinds['not-finalized']).toMatchObject({ kind: 'finalize-not-done' });
      expect(kinds.lost).toMatchObject({
        kind: 'task-message-lost',
        transport: 'servicebus',
        stage: 0,
      });
      const lost = kinds.lost as { taskIds: string[] };
      expect([...lost.taskIds].sort()).toEqual([taskId('lost', 0, 1), taskId('lost', 0, 2)].sort());
      expect(kinds.done).toBeUndefined();
      const bounded = await store.findStuck({ olderThanMs: 10, limit: 2 });
      const weight = bounded.reduce(
        (n, s) => n + (s.kind === 'task-message-lost' ? s.taskIds.length : 1),
        0,
      );
      expect(weight).toBeLessThanOrEqual(2);
      expect(weight).toBeGreaterThan(0);
      // Touching lost tasks resets their clock, and each re-send doubles the wait before the
      // task counts as lost again: a backlog is not re-sent at every reconciler pass.
      if (store.touchTasks) {
        const lostIn = async (olderThanMs: number) =>
          (
            (await store.findStuck({ olderThanMs, limit: 100 })).find((s) => s.jobId === 'lost') as
              | { taskIds: string[] }
              | undefined
          )?.taskIds ?? [];
        // Waits are chosen from the time actually elapsed, so a slow machine cannot flip a check.
        const both = [taskId('lost', 0, 1), taskId('lost', 0, 2)].sort();
        await store.touchTasks(both);
        const firstTouch = Date.now();
        await sleep(500);
        let elapsed = Date.now() - firstTouch;
        // Re-sent once: lost again only after 2 × olderThanMs.
        expect(await lostIn(Math.ceil(elapsed * 0.75))).toEqual([]);
        expect([...(await lostIn(Math.floor(elapsed * 0.4)))].sort()).toEqual(both);
        await store.touchTasks([taskId('lost', 0, 1)]);
        const secondTouch = Date.now();
        await sleep(500);
        elapsed = Date.now() - secondTouch;
        // Task 1 re-sent twice (4 × olderThanMs), task 2 once (2 × olderThanMs, long passed).
        expect(await lostIn(Math.ceil(elapsed * 0.35))).toEqual([taskId('lost', 0, 2)]);
        expect([...(await lostIn(Math.floor(elapsed * 0.2)))].sort()).toEqual(both);
      }
    });

    it('grants a lease to one owner at a time until it expires', { timeout }, async () => {
      expect(await store.acquireLease('reconciler', 'a', 300)).toBe(true);
      expect(await store.acquireLease('reconciler', 'b', 300)).toBe(false);
      expect(await store.acquireLease('reconciler', 'a', 300)).toBe(true);
      await sleep(400);
      expect(await store.acquireLease('reconciler', 'b', 300)).toBe(true);
      expect(await store.acquireLease('reconciler', 'a', 300)).toBe(false);
      const racers = await Promise.all(
        ['x', 'y', 'z'].map((o) => store.acquireLease('other', o, 5000)),
      );
      expect(racers.filter(Boolean)).toHaveLength(1);
    });

    const timedJob = (id: string, timing: { runAt?: Date; deadlineAt?: Date }) =>
      store.createJob({
        id,
        name: 'hello_world',
        params: {},
        transport: 'memory',
        stageCount: 1,
        ...timing,
      });

    it('holds a delayed job as scheduled until due, then releases it once', {
      timeout,
    }, async () => {
      const soon = await timedJob('soon', { runAt: new Date(Date.now() + 300) });
      await timedJob('later', { runAt: new Date(Date.now() + 60_000) });
      expect(soon.job.status).toBe('scheduled');
      expect(soon.job.runAt).toBeInstanceOf(Date);
      expect(await store.releaseDueJobs(10)).toEqual([]);
      // A scheduled job is not stuck work: it waits on purpose.
      expect(await store.findStuck({ olderThanMs: 0, limit: 10 })).toEqual([]);
      await sleep(400);
      const released = await Promise.all([store.releaseDueJobs(10), store.releaseDueJobs(10)]);
      expect(released.flat()).toEqual([{ jobId: 'soon', transport: 'memory' }]);
      expect((await store.getJob('soon'))?.status).toBe('queued');
      expect((await store.getJob('later'))?.status).toBe('scheduled');
      expect(await store.cancelJob('later')).toBe(true);
      expect((await store.getJob('later'))?.status).toBe('cancelled');
    });

    it('cancels jobs past their deadline with DEADLINE_EXCEEDED, once', { timeout }, async () => {
      await timedJob('late', { deadlineAt: new Date(Date.now() + 200) });
      await timedJob('fine', { deadlineAt: new Date(Date.now() + 60_000) });
      expect((await store.getJob('late'))?.status).toBe('queued');
      expect((await store.getJob('late'))?.deadlineAt).toBeInstanceOf(Date);
      await stageWithTasks('late', 0, 2);
      expect(await store.expireJobs(10)).toEqual([]);
      await sleep(300);
      const expired = await Promise.all([store.expireJobs(10), store.expireJobs(10)]);
      expect(expired.flat()).toEqual(['late']);
      const job = await store.getJob('late');
      expect(job).toMatchObject({ status: 'cancelled', error: { code: 'DEADLINE_EXCEEDED' } });
      const { tasks } = await store.listTasks('late');
      expect(tasks.map((t) => t.status)).toEqual(['cancelled', 'cancelled']);
      expect((await store.getJob('fine'))?.status).toBe('queued');
    });

    it('advances a schedule cursor forward only, and keeps pause state', { timeout }, async () => {
      expect(await store.getScheduleStates()).toEqual([]);
      const t1 = new Date('2026-01-01T00:00:00Z');
      const t2 = new Date('2026-01-01T00:01:00Z');
      expect(await store.advanceSchedule({ name: 'nightly', cursor: t1 })).toBe(true);
      const racers = await Promise.all([
        store.advanceSchedule({ name: 'nightly', cursor: t2, lastFireAt: t2, lastJobId: 'j2' }),
        store.advanceSchedule({ name: 'nightly', cursor: t2, lastFireAt: t2, lastJobId: 'j2' }),
      ]);
      expect(racers.filter(Boolean)).toHaveLength(1);
      expect(await store.advanceSchedule({ name: 'nightly', cursor: t1, lastJobId: 'old' })).toBe(
        false,
      );
      await store.setSchedulePaused('nightly', true);
      await store.setSchedulePaused('hourly', true);
      await store.setSchedulePaused('hourly', false);
      const states = (await store.getScheduleStates()).sort((a, b) => a.name.localeCompare(b.name));
      expect(states).toEqual([
        { name: 'hourly', paused: false },
        { name: 'nightly', paused: true, cursor: t2, lastFireAt: t2, lastJobId: 'j2' },
      ]);
      // A paused schedule's cursor still moves (its fires are skipped, not queued up).
      expect(await store.advanceSchedule({ name: 'hourly', cursor: t1 })).toBe(true);
    });
    storeOperationsConformance(() => store, timeout);
    if (options.flowControl !== false) storeFlowConformance(() => store, timeout);
  });
}
