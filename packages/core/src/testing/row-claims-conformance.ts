/**
 * The suite a store and transport pair with task-row claims passes against its real backend: the
 * transport claims the store's own task rows (same identity), delivers each offered open task in
 * exactly one range, brings back a range whose lock expired, settles ranges as messages are
 * settled (complete, retry, dead-letter, replay), makes a failed task due again in its row,
 * dead-letters a poisoned one without a message, keeps the lanes, and offers nothing of a job that
 * is not running.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeEnvelope, type TasksEnvelope } from '../envelope.js';
import type { Priority } from '../priority.js';
import type { Store } from '../store.js';
import type { ReceivedMessage, TaskOffer, Transport } from '../transport.js';

export interface TaskRowClaimsConformanceOptions {
  /** A store on fresh rows, initialised by the suite. Closed after each test if it can be. */
  store: () => Store | Promise<Store>;
  /**
   * A transport claiming that store's rows (called after `store`, once per test): a fresh task
   * queue, priority lanes on, its lock lasting `visibilityMs` unless a receive says otherwise.
   */
  transport: () => Transport | Promise<Transport>;
  /** A transport on other rows (another schema or database): it must refuse the store's. */
  elsewhere: () => Transport | Promise<Transport>;
  /** Lock duration the suite relies on, ms. @defaultValue 1000 */
  visibilityMs?: number;
  /** Per-test timeout, ms. @defaultValue 30000 */
  testTimeoutMs?: number;
}

type Closable = { close?: () => Promise<void> };

export function taskRowClaimsConformance(
  name: string,
  options: TaskRowClaimsConformanceOptions,
): void {
  const visibilityMs = options.visibilityMs ?? 1000;
  const timeout = options.testTimeoutMs ?? 30_000;

  describe(`task-row claims conformance: ${name}`, () => {
    let store: Store;
    let transport: Transport;
    const closing: Closable[] = [];
    let jobs = 0;
    beforeEach(async () => {
      store = await options.store();
      closing.push(store as Closable);
      await store.init?.();
      transport = await options.transport();
      closing.push(transport);
      // What an engine does first: the transport takes on the rows the store names.
      const rows = await store.taskRowsIdentity?.();
      expect(rows, 'the store names its task rows').toBeTypeOf('string');
      expect(await transport.claimTaskRows?.(rows!), 'the transport claims its own rows').toBe(
        true,
      );
    });
    afterEach(async () => {
      for (const c of closing.splice(0).reverse()) await c.close?.();
    });

    /** A running job whose stage 0 has `tasks` rows (input `{ i }`), not yet offered. */
    async function seed(tasks: number, priority?: Priority): Promise<string> {
      const id = `rows-${process.pid}-${Date.now()}-${jobs++}`;
      await store.createJob({
        id,
        name: 'row-claims',
        params: null,
        transport: transport.name,
        stageCount: 1,
        ...(priority ? { priority } : {}),
      });
      await store.startStage(id, 0, 'only');
      await store.insertTasks(
        id,
        0,
        Array.from({ length: tasks }, (_, i) => ({ index: i, input: { i } })),
      );
      return id;
    }

    const offer = (jobId: string, upto: number, more: Partial<TaskOffer> = {}) =>
      transport.offerTasks!([{ jobId, stage: 0, upto, packTasks: 4, ...more }]);

    /** Receives task messages until `tasks` tasks arrived (or `withinMs` passed), settling none. */
    async function receiveTasks(tasks: number, withinMs = visibilityMs * 4) {
      const got: ReceivedMessage[] = [];
      let n = 0;
      const deadline = Date.now() + withinMs;
      while (n < tasks && Date.now() < deadline) {
        const batch = await transport.receive('task', {
          maxMessages: 16,
          visibilityTimeoutMs: visibilityMs,
          waitMs: 200,
        });
        got.push(...batch);
        n += batch.reduce((sum, m) => sum + packOf(m).tasks.length, 0);
      }
      return got;
    }

    const indexesOf = (messages: readonly ReceivedMessage[]) =>
      messages.flatMap((m) => packOf(m).tasks.map((t) => t.index)).sort((a, b) => a - b);
    const complete = (messages: readonly ReceivedMessage[]) =>
      transport.settle(messages.map((message) => ({ message, action: 'complete' as const })));

    it('names the same rows as its store only: another schema or database names others', {
      timeout,
    }, async () => {
      const other = await options.elsewhere();
      closing.push(other);
      expect(await other.claimTaskRows?.((await store.taskRowsIdentity?.())!)).toBe(false);
    });

    it('delivers each offered task once, in ranges of at most its pack size with inputs, and nothing past the offer', {
      timeout,
    }, async () => {
      const jobId = await seed(40);
      await offer(jobId, 30);
      const first = await receiveTasks(30);
      expect(indexesOf(first)).toEqual(Array.from({ length: 30 }, (_, i) => i));
      for (const m of first) {
        const pack = packOf(m);
        expect(pack).toMatchObject({ jobId, stage: 0 });
        expect(pack.tasks.length).toBeLessThanOrEqual(4);
        expect(m.deliveryCount).toBe(1);
        for (const t of pack.tasks) expect(t.input).toEqual({ i: t.index });
      }
      // Nothing beyond the offer; a smaller offer changes nothing; a larger one hands out the rest.
      await offer(jobId, 10);
      expect(await receiveTasks(1, 600)).toEqual([]);
      await offer(jobId, 40);
      const rest = await receiveTasks(10);
      expect(indexesOf(rest)).toEqual(Array.from({ length: 10 }, (_, i) => 30 + i));
      await complete([...first, ...rest]);
    });

    it('hands out only the offered rows it sees: an offer ahead of its rows waits for them', {
      timeout,
    }, async () => {
      // A claim may read an offer newer than the rows its snapshot sees (an insert that committed
      // while it waited): the indexes it cannot see stay claimable, never delivered empty.
      const jobId = await seed(30);
      await offer(jobId, 40);
      const first = await receiveTasks(40, 800);
      expect(indexesOf(first)).toEqual(Array.from({ length: 30 }, (_, i) => i));
      await store.insertTasks(
        jobId,
        0,
        Array.from({ length: 10 }, (_, i) => ({ index: 30 + i, input: { i: 30 + i } })),
      );
      const rest = await receiveTasks(10);
      expect(indexesOf(rest)).toEqual(Array.from({ length: 10 }, (_, i) => 30 + i));
      await complete([...first, ...rest]);
    });

    it('delivers a range whose lock expired again, one delivery higher; a settled one never', {
      timeout,
    }, async () => {
      const jobId = await seed(8);
      await offer(jobId, 8);
      const got = await receiveTasks(8);
      const [kept, ...lost] = got;
      await complete([kept!]);
      const again = await receiveTasks(8 - packOf(kept!).tasks.length, visibilityMs * 5);
      expect(indexesOf(again)).toEqual(indexesOf(lost));
      for (const m of again) expect(m.deliveryCount).toBe(2);
      // A settlement of the earlier delivery no longer applies: the range is still locked.
      await complete(lost);
      await complete(again);
      expect(await receiveTasks(1, visibilityMs * 2)).toEqual([]);
    });

    it('keeps a range hidden while its lock is extended', { timeout }, async () => {
      const jobId = await seed(2);
      await offer(jobId, 2, { packTasks: 2 });
      const got = await receiveTasks(2);
      expect(transport.extendLock, 'a transport with claims extends their locks').toBeDefined();
      for (const m of got) await transport.extendLock!(m, visibilityMs * 4);
      expect(await receiveTasks(1, visibilityMs * 2)).toEqual([]);
      await complete(got);
    });

    it('delivers a retried range after its delay, and dead-letters one where dead letters are listed and replayed', {
      timeout,
    }, async () => {
      // Enough tasks for full ranges: a range holds at most a sixteenth of what is left.
      const jobId = await seed(128);
      await offer(jobId, 128, { packTasks: 4 });
      const [a, b, ...others] = await receiveTasks(128);
      await complete(others);
      await transport.settle([
        { message: a!, action: 'retry', delayMs: 300 },
        { message: b!, action: 'deadLetter', reason: 'Conformance', description: 'a range' },
      ]);
      const retried = await receiveTasks(packOf(a!).tasks.length, visibilityMs * 3);
      expect(indexesOf(retried)).toEqual(indexesOf([a!]));
      expect(retried[0]!.deliveryCount).toBe(a!.deliveryCount + 1);
      await complete(retried);
      const letters = await transport.listDeadLetters!('task');
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({ queue: 'task', reason: 'Conformance', body: b!.body });
      expect(await transport.replayDeadLetters!('task')).toBe(1);
      const replayed = await receiveTasks(packOf(b!).tasks.length);
      expect(replayed.map((m) => m.body)).toEqual([b!.body]);
      await complete(replayed);
    });

    it('makes a failed task due again in its row: delivered alone after its delay, claimed as a redelivery, in its lane', {
      timeout,
    }, async () => {
      const jobId = await seed(8, 'high');
      await offer(jobId, 8, { packTasks: 4, priority: 'high', traceparent: TRACEPARENT });
      const got = await receiveTasks(8);
      await complete(got);
      const retry = { jobId, stage: 0, priority: 'high' as const, traceparent: TRACEPARENT };
      await transport.retryTaskRows!([
        { ...retry, index: 2, delayMs: 0 },
        { ...retry, index: 5, delayMs: visibilityMs * 2 },
      ]);
      // Task 2 at once (its retry woke the receive), task 5 only after its delay.
      const soon = await transport.receive('task', {
        maxMessages: 16,
        visibilityTimeoutMs: visibilityMs,
        waitMs: visibilityMs / 2,
      });
      expect(indexesOf(soon)).toEqual([2]);
      await complete(soon);
      const later = await receiveTasks(1, visibilityMs * 4);
      expect(indexesOf(later)).toEqual([5]);
      for (const m of [...soon, ...later]) {
        // Above 1: the engine claims the task (counting the attempt) instead of admitting it.
        expect(m.deliveryCount).toBeGreaterThan(1);
        expect(m.priority).toBe('high');
        expect(packOf(m)).toMatchObject({ jobId, stage: 0, traceparent: TRACEPARENT });
        expect(packOf(m).tasks).toEqual([
          { index: packOf(m).tasks[0]!.index, input: { i: packOf(m).tasks[0]!.index } },
        ]);
      }
      // Settled like any delivery: completed, it never comes back.
      await complete(later);
      expect(await receiveTasks(1, visibilityMs * 2)).toEqual([]);
    });

    it('dead-letters a poisoned task without a message: listed in its lane with its reason, replayed to the task queue', {
      timeout,
    }, async () => {
      const body = JSON.stringify({ v: 1, kind: 'task', jobId: 'j', stage: 0, taskId: 'j.0.3' });
      await transport.deadLetterTaskRows!([
        {
          body,
          messageId: 'j.0.3#1',
          reason: 'MaxAttemptsExceeded',
          description: 'boom',
          priority: 'low',
        },
      ]);
      // Nothing to receive: the letter never was a message.
      expect(await receiveTasks(1, 400)).toEqual([]);
      const letters = await transport.listDeadLetters!('task');
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({
        queue: 'task',
        body,
        reason: 'MaxAttemptsExceeded',
        description: 'boom',
      });
      expect(await transport.replayDeadLetters!('task')).toBe(1);
      const [replayed] = await transport.receive('task', {
        maxMessages: 1,
        visibilityTimeoutMs: visibilityMs,
        waitMs: 1000,
      });
      expect(replayed).toMatchObject({ body, priority: 'low' });
      await complete([replayed!]);
      expect(await transport.listDeadLetters!('task')).toEqual([]);
    });

    it('claims higher lanes first, and a stage of another job takes its turn behind a big one', {
      timeout,
    }, async () => {
      const big = await seed(200);
      await offer(big, 200, { packTasks: 2 });
      const urgent = await seed(2, 'high');
      await offer(urgent, 2, { packTasks: 2, priority: 'high' });
      const [first] = await transport.receive('task', {
        maxMessages: 1,
        visibilityTimeoutMs: 30_000,
        waitMs: 1000,
      });
      expect(packOf(first!).jobId).toBe(urgent);
      expect(first!.priority).toBe('high');
      // Two normal jobs: the small one is served within a receive or two, not after the big one.
      const small = await seed(2);
      await offer(small, 2, { packTasks: 2 });
      const next: ReceivedMessage[] = [];
      for (let i = 0; i < 3; i++)
        next.push(
          ...(await transport.receive('task', {
            maxMessages: 1,
            visibilityTimeoutMs: 30_000,
            waitMs: 1000,
          })),
        );
      expect(next.map((m) => packOf(m).jobId)).toContain(small);
      await complete([first!, ...next]);
    });

    it('hands out nothing of a job that is not running, and no task that is not open', {
      timeout,
    }, async () => {
      const cancelled = await seed(6);
      await store.cancelJob(cancelled);
      await offer(cancelled, 6);
      const running = await seed(6);
      // Tasks 0 and 1 finished before their offer (a resumed fan-out offers them again).
      const claims = await store.claimTasks(
        [0, 1].map((index) => ({
          jobId: running,
          stage: 0,
          index,
          taskId: `${running}.0.${index}`,
        })),
      );
      expect(claims.map((c) => c.outcome)).toEqual(['run', 'run']);
      await store.completeTasks(
        [0, 1].map((index) => ({
          jobId: running,
          stage: 0,
          index,
          taskId: `${running}.0.${index}`,
          attempt: 1,
          status: 'succeeded' as const,
          result: index,
        })),
      );
      await offer(running, 6, { packTasks: 2 });
      const got = await receiveTasks(4, visibilityMs * 2);
      expect(got.every((m) => packOf(m).jobId === running)).toBe(true);
      expect(indexesOf(got)).toEqual([2, 3, 4, 5]);
      await complete(got);
    });

    it('never gives one task to two receivers at once', { timeout }, async () => {
      const jobId = await seed(300);
      await offer(jobId, 300, { packTasks: 3 });
      const all: ReceivedMessage[] = [];
      let tasks = 0;
      const deadline = Date.now() + visibilityMs * 10;
      // Four receivers at once, their locks outlasting the test, until every task came.
      const receiver = async () => {
        while (tasks < 300 && Date.now() < deadline) {
          const batch = await transport.receive('task', {
            maxMessages: 4,
            visibilityTimeoutMs: 60_000,
            waitMs: 100,
          });
          all.push(...batch);
          tasks += batch.reduce((sum, m) => sum + packOf(m).tasks.length, 0);
        }
      };
      await Promise.all(Array.from({ length: 4 }, receiver));
      expect(indexesOf(all)).toEqual(Array.from({ length: 300 }, (_, i) => i));
      await complete(all);
    });
  });
}

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

function packOf(message: ReceivedMessage): TasksEnvelope {
  const envelope = decodeEnvelope(message.body);
  if (envelope.kind !== 'tasks') throw new Error(`expected a range of tasks, got ${message.body}`);
  return envelope;
}
