import { afterEach, describe, expect, it } from 'vitest';
import { defineJob, defineTask, stage } from '../define.js';
import type { Switchyard } from '../engine/api.js';
import { createSwitchyard } from '../engine/switchyard.js';
import type { JobView } from '../engine/types.js';
import { silentLogger } from '../logger.js';
import { FINISHED_STATUSES } from '../operations/statuses.js';
import type { Store } from '../store.js';
import type { Transport } from '../transport.js';

export interface FlowControlSuiteOptions {
  /** A fresh store per test (with flow control). */
  store: () => Store | Promise<Store>;
  /**
   * A fresh transport (fresh queues) per test. Give it a low max delivery count (2 or 3) where it
   * has one: waiting for a key slot or a rate limit must use up no delivery.
   */
  transport: () => Transport | Promise<Transport>;
  /** Per-test timeout, ms. @defaultValue 60000 */
  testTimeoutMs?: number;
  /**
   * Longest wait of a refused task (`flowControl.maxWaitMs`): short, so tasks are refused many
   * times; a slow backend (PGlite) wants it longer. @defaultValue 200
   */
  maxWaitMs?: number;
}

/** One handler run, in this process's clock (`performance.now()`). */
interface Span {
  key: string;
  start: number;
  end: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Most spans of one key open at once. */
function maxOverlap(spans: readonly Span[]): Map<string, number> {
  const byKey = new Map<string, number>();
  const keys = new Set(spans.map((s) => s.key));
  for (const key of keys) {
    const edges = spans
      .filter((s) => s.key === key)
      .flatMap((s) => [
        { at: s.start, d: 1 },
        { at: s.end, d: -1 },
      ])
      // An end before a start at the same instant: a slot freed and taken again.
      .sort((a, b) => a.at - b.at || a.d - b.d);
    let open = 0;
    let max = 0;
    for (const e of edges) {
      open += e.d;
      max = Math.max(max, open);
    }
    byKey.set(key, max);
  }
  return byKey;
}

/**
 * Per-key concurrency and rate limits through the whole engine on one store and transport: two
 * workers share them, every handler run is recorded, and the limits must hold at every instant,
 * with every task succeeding on its first attempt and no delivery used up by waiting. Run it with
 * each store and transport pair.
 */
export function flowControlSuite(name: string, options: FlowControlSuiteOptions): void {
  const timeout = options.testTimeoutMs ?? 60_000;

  describe(`flow control: ${name}`, () => {
    let teardown: (() => Promise<void>) | undefined;
    afterEach(async () => {
      await teardown?.();
      teardown = undefined;
    });

    /** Two workers (two Switchyards) on one store and one transport, running `job`. */
    async function fleet(
      job: Parameters<typeof createSwitchyard>[0]['jobs'][number],
      extra: { packTasks?: number; maxWaitMs?: number } = {},
    ) {
      const store = await options.store();
      const transport = await options.transport();
      const refusals = { concurrency: 0, rateLimit: 0 };
      // Task messages received again (delivery count above 1): a refusal must use up no delivery.
      const redelivered: string[] = [];
      const receive: Transport['receive'] = async (queue, receiveOptions) => {
        const got = await transport.receive(queue, receiveOptions);
        for (const m of got)
          if (queue === 'task' && m.deliveryCount > 1)
            redelivered.push(`${m.id} (delivery ${m.deliveryCount})`);
        return got;
      };
      // The transport as it is, but for `receive` (its methods keep their own `this`).
      const observed = new Proxy(transport, {
        get(target, key) {
          if (key === 'receive') return receive;
          const value: unknown = Reflect.get(target, key, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      // Counts refusals (each one a deferral) without changing what the store does.
      const counting: Store = Object.create(store) as Store;
      counting.admitTask = async (admission) => {
        const decision = await store.admitTask!(admission);
        if (decision.outcome === 'concurrency' || decision.outcome === 'rateLimit')
          refusals[decision.outcome]++;
        return decision;
      };
      const make = () =>
        createSwitchyard({
          jobs: [job],
          store: counting,
          transports: [observed],
          logger: silentLogger,
          batching: { packTasks: extra.packTasks ?? 1, chunkSize: 8 },
          reconcile: { intervalMs: 0 },
          flowControl: {
            maxWaitMs: extra.maxWaitMs ?? options.maxWaitMs ?? 200,
            slotLeaseMs: 5000,
          },
        });
      const yards: Switchyard[] = [make(), make()];
      const stop = new AbortController();
      const working = yards.map((y) =>
        y.work({ concurrency: 8, signal: stop.signal, waitMs: 100, visibilityTimeoutMs: 5000 }),
      );
      teardown = async () => {
        stop.abort();
        await Promise.allSettled(working);
        for (const y of yards) await y.close();
      };
      return { yard: yards[0]!, store, transport, refusals, redelivered };
    }

    /** Waits for the job, noting the most tasks seen waiting (per `getJob` and `metrics`). */
    async function watch(yard: Switchyard, jobId: string, deadlineMs: number) {
      const seen = { view: 0, metrics: 0 };
      const until = Date.now() + deadlineMs;
      let view: JobView | undefined;
      for (;;) {
        view = await yard.getJob(jobId);
        for (const s of view?.stages ?? [])
          seen.view = Math.max(
            seen.view,
            (s.waiting?.concurrency ?? 0) + (s.waiting?.rateLimit ?? 0),
          );
        for (const m of (await yard.metrics()).transports)
          seen.metrics = Math.max(
            seen.metrics,
            (m.waiting?.concurrency ?? 0) + (m.waiting?.rateLimit ?? 0),
          );
        if (view && FINISHED_STATUSES.has(view.status)) break;
        if (Date.now() > until)
          throw new Error(`job ${jobId} not finished: ${JSON.stringify(view)}`);
        await sleep(20);
      }
      return { view, seen };
    }

    async function attemptsOf(yard: Switchyard, jobId: string): Promise<number[]> {
      const attempts: number[] = [];
      let cursor: string | undefined;
      do {
        const page = await yard.listTasks(jobId, { limit: 500, ...(cursor ? { cursor } : {}) });
        attempts.push(...page.tasks.map((t) => t.attempts));
        cursor = page.nextCursor;
      } while (cursor);
      return attempts;
    }

    for (const packTasks of [1, 4]) {
      it(`never runs more than the key's limit at once, across workers (packTasks ${packTasks})`, {
        timeout,
      }, async () => {
        const spans: Span[] = [];
        const task = defineTask({
          name: 'per-tenant',
          concurrency: { limit: 2, key: (input: { i: number; tenant: string }) => input.tenant },
          handler: async (input: { i: number; tenant: string }) => {
            const start = performance.now();
            await sleep(30);
            spans.push({ key: input.tenant, start, end: performance.now() });
            return input.i;
          },
        });
        const job = defineJob({
          name: 'tenants',
          stages: [
            stage({
              name: 'calls',
              task,
              fanOut: () => Array.from({ length: 24 }, (_, i) => ({ i, tenant: `t${i % 3}` })),
            }),
          ],
        });
        const { yard, refusals } = await fleet(job, { packTasks });
        const { jobId } = await yard.submit('tenants', undefined);
        const { view, seen } = await watch(yard, jobId, timeout - 5000);
        expect(view?.status).toBe('succeeded');
        expect(spans).toHaveLength(24);
        for (const [key, max] of maxOverlap(spans))
          expect(max, `key ${key}`).toBeLessThanOrEqual(2);
        // Waiting took no attempt: every task ran once, on its first attempt.
        expect(await attemptsOf(yard, jobId)).toEqual(Array(24).fill(1));
        expect(refusals.concurrency).toBeGreaterThan(0);
        expect(seen.view).toBeGreaterThan(0);
        expect(seen.metrics).toBeGreaterThan(0);
        // A finished job waits for nothing.
        expect(
          (await yard.metrics()).transports.every((m) => (m.waiting?.concurrency ?? 0) === 0),
        ).toBe(true);
      });
    }

    it('starts at most `limit` tasks per key in any window of `periodMs`', {
      timeout,
    }, async () => {
      const starts = new Map<string, number[]>();
      const periodMs = 600;
      const task = defineTask({
        name: 'metered',
        rateLimit: { limit: 3, periodMs, key: (input: { api: string }) => input.api },
        handler: (input: { api: string }) => {
          const list = starts.get(input.api) ?? [];
          list.push(performance.now());
          starts.set(input.api, list);
          return input.api;
        },
      });
      const job = defineJob({
        name: 'metered',
        stages: [
          stage({
            name: 'calls',
            task,
            fanOut: () => Array.from({ length: 18 }, (_, i) => ({ api: i % 2 ? 'a' : 'b' })),
          }),
        ],
      });
      const { yard, refusals } = await fleet(job);
      const { jobId } = await yard.submit('metered', undefined);
      const { view, seen } = await watch(yard, jobId, timeout - 5000);
      expect(view?.status).toBe('succeeded');
      for (const [api, list] of starts) {
        expect(list, api).toHaveLength(9);
        list.sort((a, b) => a - b);
        // The 4th start of a key comes a period after its 1st, and so on (a handler starts a
        // claim's round trip after its admission: 150 ms of slack for a loaded machine).
        for (let i = 3; i < list.length; i++)
          expect(list[i]! - list[i - 3]!, `${api} start ${i}`).toBeGreaterThanOrEqual(
            periodMs - 150,
          );
      }
      expect(await attemptsOf(yard, jobId)).toEqual(Array(18).fill(1));
      expect(refusals.rateLimit).toBeGreaterThan(0);
      expect(seen.view).toBeGreaterThan(0);
    });

    it('waits through many refusals without using up attempts or deliveries', {
      timeout,
    }, async () => {
      let running = 0;
      let most = 0;
      const task = defineTask({
        name: 'one-at-a-time',
        retry: { maxAttempts: 1 },
        concurrency: { limit: 1 },
        handler: async (input: { i: number }) => {
          most = Math.max(most, ++running);
          await sleep(40);
          running--;
          return input.i;
        },
      });
      const job = defineJob({
        name: 'serial',
        stages: [
          stage({
            name: 'calls',
            task,
            fanOut: () => Array.from({ length: 8 }, (_, i) => ({ i })),
          }),
        ],
      });
      // Short waits: the last tasks are refused many times before their turn.
      const { yard, refusals, transport, redelivered } = await fleet(job, {
        maxWaitMs: Math.min(30, options.maxWaitMs ?? 30),
      });
      const { jobId } = await yard.submit('serial', undefined);
      const { view } = await watch(yard, jobId, timeout - 5000);
      expect(view?.status).toBe('succeeded');
      expect(most).toBe(1);
      expect(refusals.concurrency).toBeGreaterThanOrEqual(8);
      expect(await attemptsOf(yard, jobId)).toEqual(Array(8).fill(1));
      // Each refusal completed its message and sent a fresh copy: none came back. (A message
      // received again after its task finished changes no attempt count, so only this shows it.)
      expect(redelivered).toEqual([]);
      if (transport.listDeadLetters) expect(await transport.listDeadLetters('task')).toEqual([]);
    });
  });
}
