/**
 * The transport's usage counters and cost estimate: statements counted by kind on real sends,
 * receives and settlements, the busy time they took, and the postgres path's usage per task and
 * cost per million tasks in `metrics()` and `/api/metrics/comparison` (core's `withCost`).
 */
import {
  createSwitchyard,
  defineJob,
  defineTask,
  silentLogger,
  stage,
  type TransportMetrics,
} from '@switchyard/core';
import { createHttpHandler } from '@switchyard/core/http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  POSTGRES_LIST_PRICES,
  type PostgresTransport,
  postgresStore,
  postgresTransport,
} from '../src/index.js';
import { engines } from './helpers.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

for (const engine of await engines()) {
  describe(`postgres transport usage (${engine.name})`, () => {
    const schema = engine.schema();
    let n = 0;
    function transport(extra: Partial<Parameters<typeof postgresTransport>[0]> = {}) {
      const t = postgresTransport({
        ...engine.connection(),
        schema,
        name: `u${n++}`,
        pollIntervalMs: 50,
        ...extra,
      });
      closers.push(() => t.close());
      return t;
    }

    it('counts each statement by what it does, one per call however many messages', async () => {
      const t = transport();
      expect(t.usage()).toEqual({ operations: {}, billable: 0, throttled: 0, busyMs: 0 });

      await t.send('task', [{ body: 'a' }, { body: 'b' }, { body: 'c' }]); // one lane: 1 statement
      await t.send('stage', [{ body: 's' }]);
      const tasks = await t.receive('task', { maxMessages: 10, waitMs: 0 });
      expect(tasks.map((m) => m.body).sort()).toEqual(['a', 'b', 'c']);
      const [stageMessage] = await t.receive('stage', { maxMessages: 10, waitMs: 0 });
      await t.extendLock!(stageMessage!, 5000);
      // Two completes share a statement; the retry is due now, so receivers are woken.
      await t.settle([
        { message: tasks[0]!, action: 'complete' },
        { message: tasks[1]!, action: 'complete' },
        { message: tasks[2]!, action: 'retry', delayMs: 0 },
        { message: stageMessage!, action: 'complete' },
      ]);
      const [again] = await t.receive('task', { maxMessages: 10, waitMs: 0 });
      await t.settle([{ message: again!, action: 'deadLetter', reason: 'bad' }]);
      expect(await t.listDeadLetters('task')).toHaveLength(1);
      expect(await t.replayDeadLetters('task')).toBe(1); // bounds, a batch, the move, an empty batch
      await t.ping!();

      const usage = t.usage();
      expect(usage.operations).toEqual({
        send: 2,
        receive: 3,
        complete: 2, // the task lane's and the stage queue's
        retry: 1,
        deadLetter: 1,
        notify: 1,
        extendLock: 1,
        listDeadLetters: 1,
        replayRead: 3,
        replay: 1,
        ping: 1,
      });
      expect(usage.billable).toBe(17);
      expect(usage.throttled).toBe(0);
      expect(usage.busyMs).toBeGreaterThan(0);
    });

    it('counts the wake-up subscription once, and empty polls as receives', async () => {
      const t = transport();
      const got = await t.receive('task', { maxMessages: 1, waitMs: 200 });
      expect(got).toEqual([]);
      const first = t.usage().operations;
      expect(first.listen).toBe(1);
      expect(first.receive).toBeGreaterThanOrEqual(2); // the first poll and the re-checks
      await t.receive('task', { maxMessages: 1, waitMs: 100 });
      expect(t.usage().operations.listen).toBe(1);
    });

    it('times statements in flight once however many overlap, and snapshots do not move', async () => {
      const t = transport();
      await t.ping!(); // connected and migrated: setup is neither counted nor timed
      const before = t.usage();
      const started = performance.now();
      await Promise.all(
        Array.from({ length: 8 }, () => t.receive('task', { maxMessages: 1, waitMs: 0 })),
      );
      const elapsed = performance.now() - started;
      const after = t.usage();
      expect(after.operations.receive).toBe(8);
      expect(after.busyMs).toBeGreaterThan(before.busyMs);
      // Overlapping statements count once: never more busy time than wall-clock time.
      expect(after.busyMs - before.busyMs).toBeLessThanOrEqual(elapsed + 1);
      await t.ping!();
      expect(t.usage().busyMs).toBeGreaterThan(after.busyMs);
      // A snapshot's cost is the cost of its own busy time, not of the time so far.
      expect(t.estimateCost(after).amount).toBeCloseTo(
        (after.busyMs / 3_600_000) * POSTGRES_LIST_PRICES.serverPerHour,
        12,
      );
    });

    it('prices busy time at the server hourly price, overridable, and says what is left out', async () => {
      const prices = {
        ...POSTGRES_LIST_PRICES,
        currency: 'EUR',
        sku: 'my server',
        serverPerHour: 3.6,
      };
      const t = transport({ prices });
      await t.send('task', [{ body: 'x' }]);
      const usage = t.usage();
      const cost = t.estimateCost(usage);
      expect(cost.currency).toBe('EUR');
      expect(cost.amount).toBeCloseTo(usage.busyMs / 1_000_000, 12); // 3.6 per hour = 1 per 1,000 s
      expect(cost.basis).toContain('my server');
      expect(cost.basis).toContain('2026-12-03');
      expect(cost.basis).toMatch(/storage/);
      expect(cost.basis).toMatch(/idle hours/);
      expect(cost.basis).toMatch(/store's statements/);
      // A usage from elsewhere (no busy time) is priced at the time so far.
      const bare = { operations: usage.operations, billable: usage.billable, throttled: 0 };
      expect(t.estimateCost(bare).amount).toBeGreaterThanOrEqual(cost.amount);
      // Defaults: the list price.
      const list = transport();
      await list.ping!();
      expect(list.estimateCost(list.usage()).basis).toContain(POSTGRES_LIST_PRICES.sku);
    });

    it('puts usage per task and cost per million tasks on the postgres path of metrics() and /api/metrics/comparison', async () => {
      const jobSchema = engine.schema();
      const double = defineTask({ name: 'double', handler: (i: number) => i * 2 });
      const job = defineJob({
        name: 'doubles',
        stages: [stage({ name: 'double', task: double, fanOut: () => [1, 2, 3, 4, 5, 6, 7, 8] })],
      });
      const queue: PostgresTransport = postgresTransport({
        ...engine.connection(),
        schema: jobSchema,
        pollIntervalMs: 50,
      });
      const yard = createSwitchyard({
        jobs: [job],
        store: postgresStore({ ...engine.connection(), schema: jobSchema }),
        transports: [queue],
        logger: silentLogger,
        reconcile: { intervalMs: 0 },
      });
      const controller = new AbortController();
      const working = yard.work({ signal: controller.signal, waitMs: 100 });
      closers.push(async () => {
        controller.abort();
        await working;
        await yard.close();
      });
      const { jobId } = await yard.submit('doubles', undefined);
      expect((await yard.waitFor(jobId, { pollIntervalMs: 50 })).status).toBe('succeeded');

      const expectPriced = (path: TransportMetrics | undefined) => {
        expect(path?.tasks.total).toBe(8);
        expect(path?.usage?.operations.send).toBeGreaterThan(0);
        expect(path?.usage?.operations.complete).toBeGreaterThan(0);
        expect(path?.usage?.billableOperations).toBeGreaterThan(0);
        expect(path?.usage?.perTask).toBeCloseTo(path!.usage!.billableOperations / 8, 10);
        expect(path?.usage?.throttled).toBe(0);
        expect(path?.cost?.currency).toBe('USD');
        expect(path?.cost?.amount).toBeGreaterThan(0);
        expect(path?.cost?.perMillionTasks).toBeCloseTo((path!.cost!.amount / 8) * 1e6, 6);
        expect(path?.cost?.basis).toContain('PostgreSQL');
      };
      const report = await yard.metrics();
      expectPriced(report.transports.find((p) => p.transport === 'postgres'));

      const handler = createHttpHandler(yard, { auth: { none: true }, logger: silentLogger });
      const res = await handler(new Request('http://localhost/api/metrics/comparison'));
      expect(res.status).toBe(200);
      const body = (await res.json()) as { transports: TransportMetrics[] };
      expectPriced(body.transports.find((p) => p.transport === 'postgres'));
    });
  });
}
