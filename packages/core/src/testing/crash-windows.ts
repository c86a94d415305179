import { afterEach, describe, expect, it } from 'vitest';
import { defineJob, defineTask, stage } from '../define.js';
import type { Switchyard } from '../engine/api.js';
import { createSwitchyard } from '../engine/switchyard.js';
import { decodeEnvelope } from '../envelope.js';
import { silentLogger } from '../logger.js';
import { FINISHED_STATUSES } from '../operations/statuses.js';
import type { StageRecord, StageWindow, Store } from '../store.js';
import type {
  OutgoingMessage,
  QueueKind,
  ReceivedMessage,
  Settlement,
  TaskOffer,
  TaskRowRetry,
  Transport,
} from '../transport.js';

export interface CrashWindowOptions {
  /** A fresh store per test. */
  store: () => Store | Promise<Store>;
  /** A fresh transport (fresh queues) per test. */
  transport: () => Transport | Promise<Transport>;
  /** Visibility / lock duration the transport's queues use, ms. @defaultValue 1000 */
  visibilityMs?: number;
  /**
   * How long a message may wait, once visible again, before a receive finds it: a polling
   * transport's idle poll interval. The suite takes a job for stuck (and runs the reconciler)
   * only after twice the visibility plus this, so a redelivery is not raced by a re-drive.
   * @defaultValue 500
   */
  redeliveryMs?: number;
  /** Per-test timeout, ms. @defaultValue 60000 */
  testTimeoutMs?: number;
  /**
   * The transport claims the store's task rows (task-row claims): the suite checks that no task
   * message is sent, and crashes the claims' hand-offs (an offer, a claimed range) instead of the
   * task messages' and the fairness window's, which this path does not have.
   * @defaultValue false
   */
  rowClaims?: boolean;
}

const TASKS = 12;

interface Hooks {
  /** Return true to make this send reject (nothing sent). */
  failSend?: (queue: QueueKind, messages: readonly OutgoingMessage[]) => boolean;
  /** Return true to drop this message silently. */
  dropMessage?: (queue: QueueKind, message: OutgoingMessage) => boolean;
  /** Return true to turn this settlement into a plain complete (the message is gone). */
  loseMessage?: (settlement: Settlement) => boolean;
  /** Return true to make this offer of task rows reject (nothing offered). */
  failOffer?: (offers: readonly TaskOffer[]) => boolean;
  /** Return true to lose this delivery: its worker crashed before running it (it stays locked). */
  dropDelivery?: (message: ReceivedMessage) => boolean;
  /** Return true to lose this settlement: its worker crashed before it (the message stays locked). */
  dropSettlement?: (settlement: Settlement) => boolean;
  /** Return true to make this attempt of a task fail (its handler throws). */
  failAttempt?: (taskId: string, attempt: number) => boolean;
  /** Return true to make this call making task rows due again reject (nothing changed). */
  failRetryRows?: (retries: readonly TaskRowRetry[]) => boolean;
  /** Return true to make this `finishJob` reject (nothing recorded): a crash before the finish. */
  failFinish?: (jobId: string) => boolean;
  /** The fairness window (`batching.window`); by default the engine's, wider than the job. */
  window?: number;
  /** Tasks per fan-out chunk (`batching.chunkSize`). @defaultValue 4 */
  chunkSize?: number;
  /**
   * Return true to lose this release: the worker crashed before asking the store for it. `stage`
   * is the first window's stage as the store has it just before.
   */
  dropRelease?: (windows: readonly StageWindow[], stage: StageRecord | undefined) => boolean;
}

/** The transport with the hooks' faults, counting the task messages it sent. */
function hooked(inner: Transport, hooks: Hooks): Transport & { taskMessagesSent: number } {
  const t: Transport & { taskMessagesSent: number } = {
    name: inner.name,
    limits: inner.limits,
    taskMessagesSent: 0,
    async send(queue, messages, options) {
      if (hooks.failSend?.(queue, messages)) throw new Error('injected: crashed before this send');
      const kept = messages.filter((m) => !hooks.dropMessage?.(queue, m));
      if (queue === 'task') t.taskMessagesSent += kept.length;
      if (kept.length > 0) await inner.send(queue, kept, options);
    },
    async receive(queue, options) {
      const got = await inner.receive(queue, options);
      return hooks.dropDelivery ? got.filter((m) => !hooks.dropDelivery!(m)) : got;
    },
    settle: (settlements) =>
      inner.settle(
        settlements
          .filter((s) => !hooks.dropSettlement?.(s))
          .map((s) =>
            hooks.loseMessage?.(s) ? { message: s.message, action: 'complete' as const } : s,
          ),
      ),
    close: () => inner.close(),
  };
  if (inner.extendLock) t.extendLock = inner.extendLock.bind(inner);
  const { claimTaskRows, offerTasks, retryTaskRows, deadLetterTaskRows } = inner;
  if (claimTaskRows && offerTasks && retryTaskRows && deadLetterTaskRows) {
    t.claimTaskRows = (rows) => claimTaskRows.call(inner, rows);
    t.offerTasks = async (offers) => {
      if (hooks.failOffer?.(offers)) throw new Error('injected: crashed before this offer');
      await offerTasks.call(inner, offers);
    };
    t.retryTaskRows = async (retries) => {
      if (hooks.failRetryRows?.(retries)) throw new Error('injected: crashed before this retry');
      await retryTaskRows.call(inner, retries);
    };
    t.deadLetterTaskRows = (letters) => deadLetterTaskRows.call(inner, letters);
  }
  return t;
}

/** A predicate that is true the first time `hit` is, and never again. */
function firstTime(): (hit: boolean) => boolean {
  let done = false;
  return (hit) => {
    if (!hit || done) return false;
    done = true;
    return true;
  };
}

/** {@link firstTime}, remembering whether it came true: a test checks its fault was injected. */
function injectedOnce(): { when: (hit: boolean) => boolean; readonly injected: boolean } {
  const once = firstTime();
  let injected = false;
  return {
    when: (hit) => {
      const now = once(hit);
      if (now) injected = true;
      return now;
    },
    get injected() {
      return injected;
    },
  };
}

const stageOf = (m: OutgoingMessage) => {
  const e = decodeEnvelope(m.body);
  return e.kind === 'stage' ? e.stage : -1;
};
/** The tasks a message carries (one, or a pack's), each as `stage * 1000 + index`. */
const taskIndexesOf = (m: OutgoingMessage): number[] => {
  const e = decodeEnvelope(m.body);
  if (e.kind === 'task') return [Number(e.taskId.split('.').pop()) + e.stage * 1000];
  return e.kind === 'tasks' ? e.tasks.map((t) => t.index + e.stage * 1000) : [];
};

/**
 * The hand-off windows between store and transport (DESIGN invariant 6), each crashed or dropped
 * exactly once — submit, fan-out, advance, finalize, a task message, the release of a delayed
 * job — a worker plus the reconciler must finish the job with exact counts.
 * Run it with each store and transport pair.
 */
export function crashWindowSuite(name: string, options: CrashWindowOptions): void {
  const visibilityMs = options.visibilityMs ?? 1000;
  const quietMs = visibilityMs * 2 + (options.redeliveryMs ?? 500);
  const timeout = options.testTimeoutMs ?? 60_000;

  describe(`crash windows: ${name}`, () => {
    let teardown: (() => Promise<void>) | undefined;
    /** The test's reconciler has run a pass (`finish`): a crash a hook plays out is over. */
    let reconciled = false;
    afterEach(async () => {
      await teardown?.();
      teardown = undefined;
    });

    async function setup(hooks: Hooks) {
      reconciled = false;
      const store = await options.store();
      const transport = hooked(await options.transport(), hooks);
      const handled = new Map<string, number>();
      const advanced = new Map<number, number>();
      let finalized = 0;
      const countingStore: Store = Object.create(store) as Store;
      countingStore.startStage = async (jobId, index, stageName) => {
        const r = await store.startStage(jobId, index, stageName);
        if (r.advanced) advanced.set(index, (advanced.get(index) ?? 0) + 1);
        return r;
      };
      countingStore.releaseTasks = async (windows) => {
        const [first] = windows;
        if (hooks.dropRelease && first) {
          const stage = (await store.getStages(first.jobId))[first.stage];
          if (hooks.dropRelease(windows, stage)) return [];
        }
        return store.releaseTasks(windows);
      };
      countingStore.finishJob = async (jobId, outcome) => {
        if (hooks.failFinish?.(jobId)) throw new Error('injected: crashed before the finish');
        const done = await store.finishJob(jobId, outcome);
        if (done) finalized++;
        return done;
      };
      const task = defineTask({
        name: 'square',
        // One retry is enough for an injected failure, and it comes at once.
        retry: { maxAttempts: 3, initialDelayMs: 50, jitter: 0 },
        handler: (input: { i: number }, ctx) => {
          handled.set(ctx.taskId, (handled.get(ctx.taskId) ?? 0) + 1);
          if (hooks.failAttempt?.(ctx.taskId, ctx.attempt))
            throw new Error(`injected: attempt ${ctx.attempt} failed`);
          return input.i * input.i;
        },
      });
      const job = defineJob({
        name: 'windows',
        stages: [
          stage({
            name: 'first',
            task,
            fanOut: () => Array.from({ length: TASKS }, (_, i) => ({ i })),
          }),
          stage({
            name: 'second',
            task,
            async *fanOut(_params: unknown, ctx) {
              for await (const r of ctx.results<number>('first')) yield { i: r.result };
            },
          }),
        ],
        finalize: async ({ results }) => {
          let sum = 0;
          for await (const r of results<number>('second')) sum += r.result;
          return { sum };
        },
      });
      // No finalize: the last stage's completion finishes it, with no finish message.
      const plain = defineJob({
        name: 'plain',
        stages: [
          stage({
            name: 'only',
            task,
            fanOut: () => Array.from({ length: TASKS }, (_, i) => ({ i })),
          }),
        ],
      });
      const yard: Switchyard = createSwitchyard({
        jobs: [job, plain],
        store: countingStore,
        transports: [transport],
        logger: silentLogger,
        batching: {
          chunkSize: hooks.chunkSize ?? 4,
          maxMessages: 2,
          ...(hooks.window === undefined ? {} : { window: hooks.window }),
        },
        reconcile: { intervalMs: 0 },
        // Scheduler passes are the tests' own (runSchedules).
        scheduler: { intervalMs: 0 },
      });
      const controller = new AbortController();
      const working = yard.work({
        concurrency: 8,
        signal: controller.signal,
        visibilityTimeoutMs: visibilityMs,
        waitMs: 100,
      });
      teardown = async () => {
        controller.abort();
        await working;
        await yard.close();
      };
      return { yard, store, transport, handled, advanced, finalized: () => finalized };
    }

    /**
     * Waits until the job is terminal, running a reconciler pass whenever it stops moving; with
     * `reconcile: false`, never (the job must finish by redeliveries alone).
     */
    async function finish(yard: Switchyard, jobId: string, { reconcile = true } = {}) {
      const deadline = Date.now() + timeout - 5000;
      let last = '';
      let still = 0;
      const redriven: Record<string, number> = {};
      for (;;) {
        const view = await yard.getJob(jobId);
        if (!view) throw new Error('job vanished');
        if (FINISHED_STATUSES.has(view.status)) return { view, redriven };
        if (Date.now() > deadline) throw new Error(`job stuck: ${JSON.stringify(view.stages)}`);
        const snapshot = JSON.stringify(view.stages.map((s) => [s.status, s.succeeded, s.failed]));
        still = snapshot === last ? still + 1 : 0;
        last = snapshot;
        // Quiet for longer than a redelivery would take: whatever is left is stuck.
        if (reconcile && still * 100 > quietMs) {
          reconciled = true;
          const r = await yard.reconcile({ olderThanMs: visibilityMs });
          for (const [k, v] of Object.entries(r.redriven)) redriven[k] = (redriven[k] ?? 0) + v;
          still = 0;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    function expectExact(
      ctx: Awaited<ReturnType<typeof setup>>,
      view: { status: string; result?: unknown },
    ) {
      expect(view.status).toBe('succeeded');
      const expected = Array.from({ length: TASKS }, (_, i) => i ** 4).reduce((a, b) => a + b, 0);
      expect(view.result).toEqual({ sum: expected });
      expect([...ctx.advanced.entries()].sort()).toEqual([
        [0, 1],
        [1, 1],
      ]);
      expect(ctx.finalized()).toBe(1);
      expect(ctx.handled.size).toBe(2 * TASKS);
      // Task-row claims: the rows were the messages (a re-drive alone would send one).
      if (options.rowClaims) expect(ctx.transport.taskMessagesSent).toBe(0);
    }

    /** The crash windows of task-row claims: an offer, a claimed range. */
    function rowClaimWindows() {
      it('2r. a fan-out inserted tasks, then its offer failed and the stage message was lost: the reconciler resumes the fan-out, which offers them again', {
        timeout,
      }, async () => {
        let offers = 0;
        const once = firstTime();
        const ctx = await setup({
          failOffer: () => ++offers === 2,
          loseMessage: (s) => once(s.message.queue === 'stage' && s.action === 'retry'),
        });
        const { jobId } = await ctx.yard.submit('windows', undefined);
        const { view, redriven } = await finish(ctx.yard, jobId);
        expectExact(ctx, view);
        expect(redriven['fanout-incomplete']).toBe(1);
      });

      it('4r. a worker claimed a range of task rows, then crashed before running it: the range comes back when its lock runs out', {
        timeout,
      }, async () => {
        const drop = injectedOnce();
        const ctx = await setup({
          dropDelivery: (m) => drop.when(m.queue === 'task' && m.deliveryCount === 1),
        });
        const { jobId } = await ctx.yard.submit('windows', undefined);
        // No reconciler pass: the lock's expiry alone must bring the range back.
        const { view } = await finish(ctx.yard, jobId, { reconcile: false });
        expectExact(ctx, view);
        expect(drop.injected).toBe(true);
      });
    }

    if (options.rowClaims) rowClaimWindows();

    /** The crash windows of a failed attempt on task-row claims: the task's row made due again. */
    function rowRetryWindows() {
      /** A failed first attempt of the first stage's task 5; its id, once known. */
      const failFive = () => {
        let failed: string | undefined;
        return {
          failAttempt: (taskId: string, attempt: number) => {
            if (attempt !== 1 || !taskId.endsWith('.0.5') || failed !== undefined) return false;
            failed = taskId;
            return true;
          },
          failed: () => failed,
        };
      };
      it('5r. a task failed and its row was made due again, then the worker crashed before settling its range: the range and the retry both deliver it, and it has one outcome', {
        timeout,
      }, async () => {
        const five = failFive();
        const drop = injectedOnce();
        const ctx = await setup({
          failAttempt: five.failAttempt,
          dropSettlement: (s) =>
            drop.when(
              s.message.queue === 'task' &&
                s.message.deliveryCount === 1 &&
                taskIndexesOf(s.message).includes(5),
            ),
        });
        const { jobId } = await ctx.yard.submit('windows', undefined);
        // No reconciler pass: the retry's due time alone finishes the job.
        const { view } = await finish(ctx.yard, jobId, { reconcile: false });
        expectExact(ctx, view);
        expect(drop.injected).toBe(true);
        expect(ctx.handled.get(five.failed()!)).toBeGreaterThanOrEqual(2);
        // The range comes back once its lock runs out, after the job's end: it changes nothing.
        await new Promise((r) => setTimeout(r, quietMs));
        expectExact(ctx, (await ctx.yard.getJob(jobId))!);
      });

      it('6r. a task failed, then making its row due again failed: its range is released and delivered again, and the task runs once more', {
        timeout,
      }, async () => {
        const five = failFive();
        const fail = injectedOnce();
        const ctx = await setup({
          failAttempt: five.failAttempt,
          failRetryRows: () => fail.when(true),
        });
        const { jobId } = await ctx.yard.submit('windows', undefined);
        const { view } = await finish(ctx.yard, jobId, { reconcile: false });
        expectExact(ctx, view);
        expect(fail.injected).toBe(true);
        expect(ctx.handled.get(five.failed()!)).toBe(2);
      });
    }

    if (options.rowClaims) rowRetryWindows();

    it('1. submit committed the job, then crashed before sending the first stage message', {
      timeout,
    }, async () => {
      const once = firstTime();
      const ctx = await setup({ failSend: (q) => once(q === 'stage') });
      const err = await ctx.yard.submit('windows', undefined).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      // "Older than 0 ms" needs the clock to have moved past the job's creation.
      await new Promise((r) => setTimeout(r, 5));
      const [job] = (await ctx.store.findStuck({ olderThanMs: 0, limit: 10 })).filter(
        (s) => s.kind === 'job-not-started',
      );
      expect(job).toBeDefined();
      const { view, redriven } = await finish(ctx.yard, job!.jobId);
      expectExact(ctx, view);
      expect(redriven['job-not-started']).toBe(1);
    });

    // Task messages and windows: none on a path that claims task rows.
    if (!options.rowClaims)
      it('2. a fan-out inserted tasks, then a batch send failed part-way and the stage message was lost', {
        timeout,
      }, async () => {
        let taskSends = 0;
        const once = firstTime();
        const ctx = await setup({
          failSend: (q) => q === 'task' && ++taskSends === 3,
          loseMessage: (s) => once(s.message.queue === 'stage' && s.action === 'retry'),
        });
        const { jobId } = await ctx.yard.submit('windows', undefined);
        const { view, redriven } = await finish(ctx.yard, jobId);
        expectExact(ctx, view);
        expect(redriven['fanout-incomplete']).toBe(1);
      });

    it('3a. the last completion committed "stage complete", then crashed before sending the advance: redelivery re-sends it', {
      timeout,
    }, async () => {
      let failed = false;
      const once = firstTime();
      const ctx = await setup({
        failSend: (q, ms) => {
          const hit = once(q === 'stage' && ms.some((m) => stageOf(m) === 1));
          if (hit) failed = true;
          return hit;
        },
      });
      const { jobId } = await ctx.yard.submit('windows', undefined);
      // No reconciler pass: the redelivery alone must send the advance, however slow it is.
      const { view } = await finish(ctx.yard, jobId, { reconcile: false });
      expectExact(ctx, view);
      expect(failed).toBe(true);
    });

    it('3b. the advance message was lost after the task was acknowledged: the reconciler re-sends it', {
      timeout,
    }, async () => {
      const once = firstTime();
      const ctx = await setup({ dropMessage: (q, m) => once(q === 'stage' && stageOf(m) === 1) });
      const { jobId } = await ctx.yard.submit('windows', undefined);
      const { view, redriven } = await finish(ctx.yard, jobId);
      expectExact(ctx, view);
      expect(redriven['stage-not-advanced']).toBe(1);
    });

    it('3c. the finalize message was lost: the reconciler finishes the job', {
      timeout,
    }, async () => {
      const once = firstTime();
      const ctx = await setup({ dropMessage: (q, m) => once(q === 'stage' && stageOf(m) === 2) });
      const { jobId } = await ctx.yard.submit('windows', undefined);
      const { view, redriven } = await finish(ctx.yard, jobId);
      expectExact(ctx, view);
      expect(redriven['finalize-not-done']).toBe(1);
    });

    /** A job without finalize: every task ran once, the job finished once, no finish message. */
    async function expectPlain(ctx: Awaited<ReturnType<typeof setup>>, view: { status: string }) {
      expect(view.status).toBe('succeeded');
      expect([...ctx.handled.values()]).toEqual(Array.from({ length: TASKS }, () => 1));
      expect(ctx.finalized()).toBe(1);
      expect(await ctx.transport.receive('stage', { maxMessages: 10, waitMs: 0 })).toEqual([]);
    }

    it('3d. a job without finalize: its last completion committed, then the finish crashed: the redelivery finishes it', {
      timeout,
    }, async () => {
      const crash = injectedOnce();
      const ctx = await setup({ failFinish: () => crash.when(true) });
      const { jobId } = await ctx.yard.submit('plain', undefined);
      // No reconciler pass: the redelivery alone must finish the job.
      const { view } = await finish(ctx.yard, jobId, { reconcile: false });
      await expectPlain(ctx, view);
      expect(crash.injected).toBe(true);
    });

    it('3e. a job without finalize: the finish crashed and its task messages were lost: the reconciler finishes it', {
      timeout,
    }, async () => {
      const crash = injectedOnce();
      let lost = 0;
      const ctx = await setup({
        failFinish: () => crash.when(true),
        // Every message the crash failed is gone, not redelivered: a task message whose outcome
        // batch it was, or a stage message whose redelivery found the stage complete and raced
        // the last outcome batch to the finish (a slow fan-out outlives its lock).
        loseMessage: (s) => {
          const lose = crash.injected && s.action !== 'complete';
          if (lose) lost++;
          return lose;
        },
      });
      const { jobId } = await ctx.yard.submit('plain', undefined);
      const { view, redriven } = await finish(ctx.yard, jobId);
      await expectPlain(ctx, view);
      expect(lost).toBeGreaterThan(0);
      expect(redriven['finalize-not-done']).toBe(1);
    });

    // Task messages and windows: none on a path that claims task rows.
    if (!options.rowClaims)
      it('4. a task message expired or was purged while its task was pending: the reconciler re-sends it', {
        timeout,
      }, async () => {
        const once = firstTime();
        const ctx = await setup({
          dropMessage: (q, m) => once(q === 'task' && taskIndexesOf(m).includes(5)),
        });
        const { jobId } = await ctx.yard.submit('windows', undefined);
        const { view, redriven } = await finish(ctx.yard, jobId);
        expectExact(ctx, view);
        expect(redriven['task-message-lost']).toBe(1);
      });

    // Task messages and windows: none on a path that claims task rows.
    if (!options.rowClaims)
      it('6. a fairness window released a task, then its send failed: the reconciler re-sends it', {
        timeout,
      }, async () => {
        const once = firstTime();
        // Window 1 and one fan-out chunk, released before any task runs: task 1 of the first
        // stage is sent by a barrier batch's release, the one task 0's claim or end made (a later
        // chunk's release could send it while task 0 runs, and the fan-out's redelivery would
        // re-send it).
        const ctx = await setup({
          window: 1,
          chunkSize: TASKS,
          failSend: (q, ms) => once(q === 'task' && ms.some((m) => taskIndexesOf(m).includes(1))),
        });
        const { jobId } = await ctx.yard.submit('windows', undefined);
        const { view, redriven } = await finish(ctx.yard, jobId);
        expectExact(ctx, view);
        expect(redriven['task-message-lost']).toBe(1);
      });

    // Task messages and windows: none on a path that claims task rows.
    if (!options.rowClaims)
      it('7. outcomes committed, then the worker crashed before their window’s release: the reconciler releases it', {
        timeout,
      }, async () => {
        // Window 1, the fan-out over (sealed): the worker crashed, so every release its claims
        // and outcomes asked for is lost — until the reconciler's pass, the only one left to
        // release the stage's next task once its released ones have ended.
        let lost = 0;
        const ctx = await setup({
          window: 1,
          dropRelease: (ws, stage) => {
            if (reconciled || ws.some((w) => w.fanOut) || !stage || stage.total === null)
              return false;
            if ((stage.released ?? 0) >= stage.total) return false;
            lost++;
            return true;
          },
        });
        const { jobId } = await ctx.yard.submit('windows', undefined);
        const { view, redriven } = await finish(ctx.yard, jobId);
        expectExact(ctx, view);
        expect(lost).toBeGreaterThan(0);
        expect(redriven['window-released']).toBe(1);
      });

    it('5. a delayed job waits as scheduled; its release committed, then crashed before sending the first stage message: the reconciler starts it', {
      timeout,
    }, async () => {
      const once = firstTime();
      const ctx = await setup({ failSend: (q) => once(q === 'stage') });
      // Passes are the test's own: the job stays scheduled until one runs after its runAt.
      const submitted = await ctx.yard.submit('windows', undefined, { delayMs: 500 });
      expect(submitted.status).toBe('scheduled');
      const waiting = await ctx.yard.getJob(submitted.jobId);
      expect(waiting?.status).toBe('scheduled');
      const runAt = waiting!.runAt!;
      while (Date.now() <= runAt.getTime()) await new Promise((r) => setTimeout(r, 50));
      // The pass moves the job to queued, then its send fails: the pass fails with it.
      await expect(ctx.yard.runSchedules()).rejects.toThrow(/injected/);
      expect((await ctx.yard.getJob(submitted.jobId))?.status).toBe('queued');
      const { view, redriven } = await finish(ctx.yard, submitted.jobId);
      expectExact(ctx, view);
      expect(redriven['job-not-started']).toBe(1);
      expect((await ctx.yard.getJob(submitted.jobId))!.startedAt!.getTime()).toBeGreaterThanOrEqual(
        runAt.getTime(),
      );
    });
  });
}
