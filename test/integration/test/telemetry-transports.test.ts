/**
 * One trace per job on every real transport, read through the OpenTelemetry SDK's in-memory
 * exporters. One test per transport (Service Bus emulator, Storage Queues on Azurite, PostgreSQL):
 * a three-stage job run by two workers is one trace from submit to finalize; a retried task shows
 * both attempts under the same fan-out, the failed one with its error; a poisoned task shows its
 * error, the exception event and the dead-letter decision; metrics carry the store's counts; no
 * exported span or metric carries a secret or a task input. The Functions path (trigger helpers →
 * `handle()`) records the queue wait from the trigger's enqueue time.
 */

import { randomBytes } from 'node:crypto';
import { ServiceBusClient } from '@azure/service-bus';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import {
  createSwitchyard,
  defineJob,
  defineTask,
  memoryStore,
  memoryTransport,
  silentLogger,
  stage,
} from '@switchyard/core';
import type { Store, Transport } from '@switchyard/core/driver';
import { postgresStore, postgresTransport } from '@switchyard/driver-postgres';
import {
  DIAGNOSTIC_ID,
  fromServiceBusTrigger,
  serviceBusTransport,
} from '@switchyard/driver-servicebus';
import { fromStorageQueueTrigger, storageQueueTransport } from '@switchyard/driver-storagequeue';
import { startEmulator } from '@switchyard/servicebus-emulator';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type OtelHarness,
  otelHarness,
  parentOf,
  total,
} from '../../../packages/core/test/otel-harness.js';
import { startAzurite } from '../../../packages/driver-storagequeue/test/azurite.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const TASKS = 4;
const SECRET = 'sk-live-DO-NOT-LEAK-51c2';
const INPUT_MARK = 'input-marker-e07d';

async function serverReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    return true;
  } catch (err) {
    if (process.env.REQUIRE_SERVICES === '1')
      throw new Error('REQUIRE_SERVICES=1 but PostgreSQL is unreachable', { cause: err });
    console.warn('[integration] PostgreSQL unreachable: skipping the Postgres telemetry case');
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}
const server = await serverReachable();

/** Stage b's task 0 fails its first attempt; stage c's task 1 always fails (tolerated). */
const work = defineTask({
  name: 'work',
  input: z.object({ stage: z.string(), i: z.number(), note: z.string() }),
  retry: { maxAttempts: 2, initialDelayMs: 50, jitter: 0 },
  handler: ({ stage, i }, ctx) => {
    if (stage === 'b' && i === 0 && ctx.attempt === 1) throw new Error('transient failure');
    if (stage === 'c' && i === 1) throw new Error('always broken');
    return i;
  },
});
/** The params carry a secret, which the fan-out copies into every task input. */
const job = defineJob({
  name: 'traced',
  params: z.object({ token: z.string() }),
  stages: ['a', 'b', 'c'].map((name) =>
    stage({
      name,
      task: work,
      fanOut: ({ token }: { token: string }) =>
        Array.from({ length: TASKS }, (_, i) => ({
          stage: name,
          i,
          note: `${INPUT_MARK} ${token}`,
        })),
      tolerateFailures: 1,
    }),
  ),
});

/**
 * The exported spans once the job's trace is whole: the last stage's advance (where a job without
 * finalize finishes) is in, and every span's parent too (a span ends after the message it sent may
 * already have been processed elsewhere).
 */
async function wholeTrace(otel: OtelHarness): Promise<ReadableSpan[]> {
  const until = Date.now() + 30_000;
  for (;;) {
    const spans = otel.spans();
    const ids = new Set(spans.map((s) => s.spanContext().spanId));
    const whole =
      spans.some(
        (s) => s.name === 'switchyard advance' && s.attributes['switchyard.stage'] === 2,
      ) && spans.every((s) => parentOf(s) === '' || ids.has(parentOf(s)));
    if (whole || Date.now() > until) return spans;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A failed attempt's span: error status with the handler's message and its exception event. */
function expectFailed(span: ReadableSpan, message: string): void {
  expect(span.status).toMatchObject({ code: SpanStatusCode.ERROR, message });
  const exception = span.events.find((e) => e.name === 'exception');
  expect(exception?.attributes).toMatchObject({
    'exception.type': 'Error',
    'exception.message': message,
  });
}

/** Runs the job on two workers, each with its own transport client, and checks its trace. */
async function runTraced(options: { store: Store; transports: [Transport, Transport] }) {
  const otel = otelHarness();
  const telemetry = { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider };
  const controller = new AbortController();
  const yards = options.transports.map((t) =>
    createSwitchyard({
      jobs: [job],
      store: options.store,
      transports: { path: t },
      logger: silentLogger,
      reconcile: { intervalMs: 0 },
      telemetry,
    }),
  );
  const loops = yards.map((y) =>
    y.work({ concurrency: 8, signal: controller.signal, waitMs: 200, visibilityTimeoutMs: 5000 }),
  );
  try {
    const { jobId } = await yards[0]!.submit('traced', { token: SECRET });
    const view = await yards[0]!.waitFor(jobId, {
      pollIntervalMs: 50,
      signal: AbortSignal.timeout(60_000),
    });
    expect(view.status).toBe('succeeded');
    const spans = await wholeTrace(otel);
    const [submit] = spans.filter((s) => s.name === 'switchyard submit');
    const traceId = submit!.spanContext().traceId;
    expect(spans.every((s) => s.spanContext().traceId === traceId)).toBe(true);
    const ids = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    const parent = (s: ReadableSpan) => ids.get(parentOf(s));
    const named = (n: string) => spans.filter((s) => s.name === n);
    expect(named('switchyard stage')).toHaveLength(3);
    // No finalize: the last stage's advance finished the job, and no finish message was sent.
    expect(named('switchyard finalize')).toHaveLength(0);
    expect(
      named('switchyard advance')
        .map((s) => s.attributes['switchyard.stage'])
        .sort(),
    ).toEqual([0, 1, 2]);
    for (const s of named('switchyard stage'))
      expect(parent(s)?.name).toBe(
        s.attributes['switchyard.stage'] === 0 ? 'switchyard submit' : 'switchyard advance',
      );
    const tasks = named('switchyard task');
    for (const t of tasks) {
      expect(parent(t)?.name).toBe('switchyard fan-out');
      expect(parent(t)?.attributes['switchyard.stage']).toBe(t.attributes['switchyard.stage']);
      expect(t.attributes['switchyard.transport']).toBe('path');
    }
    /** A task's attempt spans, first attempt first. */
    const attempts = (stageIndex: number, index: number) =>
      tasks
        .filter(
          (t) =>
            t.attributes['switchyard.stage'] === stageIndex &&
            t.attributes['switchyard.task.index'] === index,
        )
        .sort(
          (a, b) =>
            (a.attributes['switchyard.attempt'] as number) -
            (b.attributes['switchyard.attempt'] as number),
        );
    const summary = (list: ReadableSpan[]) =>
      list.map((t) => [
        t.attributes['switchyard.attempt'],
        t.attributes['switchyard.task.outcome'],
      ]);

    // The retried task: both attempts, children of the same fan-out (its retry is the same
    // message, or a copy carrying the same trace context); the failed one with its error.
    const retried = attempts(1, 0);
    expect(summary(retried)).toEqual([
      [1, 'retry'],
      [2, 'succeeded'],
    ]);
    expect(parentOf(retried[1]!)).toBe(parentOf(retried[0]!));
    expectFailed(retried[0]!, 'transient failure');
    expect(retried[1]!.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(retried[1]!.events.filter((e) => e.name === 'exception')).toEqual([]);

    // The poisoned task: its last attempt shows the error and the dead-letter decision.
    const poisoned = attempts(2, 1);
    expect(summary(poisoned)).toEqual([
      [1, 'retry'],
      [2, 'dead_letter'],
    ]);
    expect(parentOf(poisoned[1]!)).toBe(parentOf(poisoned[0]!));
    for (const p of poisoned) expectFailed(p, 'always broken');
    expect(poisoned[0]!.attributes['switchyard.dead_letter.reason']).toBeUndefined();
    expect(poisoned[1]!.attributes['switchyard.dead_letter.reason']).toBe('MaxAttemptsExceeded');

    // Metrics: the store's counts; a queue wait for every attempt (each transport reports when
    // it enqueued the message), counted where the attempt's job was known (its span names it).
    const stages = await options.store.getStages(jobId);
    const points = await otel.metrics();
    expect(total(points, 'switchyard.tasks.completed')).toBe(
      stages.reduce((n, s) => n + s.succeeded, 0),
    );
    expect(total(points, 'switchyard.tasks.poisoned')).toBe(
      stages.reduce((n, s) => n + s.failed, 0),
    );
    expect(total(points, 'switchyard.tasks.retried')).toBe(2);
    expect(total(points, 'switchyard.task.queue_wait')).toBe(
      tasks.filter((t) => t.attributes['switchyard.job.name'] === 'traced').length,
    );
    expect(total(points, 'switchyard.task.queue_wait')).toBeGreaterThanOrEqual(3 * TASKS + 2);

    // Every exported span and metric point, scanned: ids, counts and outcomes only.
    const exported = JSON.stringify({
      spans: spans.map((s) => ({
        name: s.name,
        attributes: s.attributes,
        events: s.events,
        status: s.status,
        links: s.links,
      })),
      metrics: points,
    });
    expect(exported).toContain(jobId);
    expect(exported).not.toContain(SECRET);
    expect(exported).not.toContain(INPUT_MARK);
    return { jobId, spans };
  } finally {
    controller.abort();
    await Promise.all(loops);
    await Promise.all(yards.map((y) => y.close()));
    await otel.shutdown();
  }
}

/** A transport's backend for one test: the store, a transport client per worker, and cleanup. */
interface Backend {
  store: Store;
  make(): Transport;
  /** Checks of this transport alone, after the job's. */
  after?(): Promise<void>;
  stop(): Promise<void>;
}

const TRANSPORTS: { name: string; available: boolean; start(): Promise<Backend> }[] = [
  {
    name: 'Service Bus (emulator)',
    available: true,
    async start() {
      const emulator = await startEmulator({ port: 0, lockDurationMs: 5000 });
      const name = randomBytes(4).toString('hex');
      const queues = { stage: `otel-jobs-${name}`, task: `otel-tasks-${name}` };
      const make = () =>
        serviceBusTransport({ connectionString: emulator.connectionString, queues });
      return {
        store: memoryStore(),
        make,
        // The envelope's traceparent is also the message's Diagnostic-Id.
        async after() {
          const transport = make();
          const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
          await transport.send('task', [{ body: '{}', messageId: 'm1', traceparent }]);
          await transport.close();
          const client = new ServiceBusClient(emulator.connectionString);
          const receiver = client.createReceiver(queues.task, { receiveMode: 'receiveAndDelete' });
          const [raw] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5000 });
          expect(raw?.applicationProperties?.[DIAGNOSTIC_ID]).toBe(traceparent);
          await client.close();
        },
        stop: () => emulator.close(),
      };
    },
  },
  {
    name: 'Storage Queues (Azurite)',
    available: true,
    async start() {
      const azurite = await startAzurite();
      const name = `otel-${randomBytes(4).toString('hex')}`;
      return {
        store: memoryStore(),
        make: () =>
          storageQueueTransport({
            connectionString: azurite.connectionString,
            queues: { stage: `${name}-s`, task: `${name}-t` },
          }),
        stop: () => azurite.stop(),
      };
    },
  },
  {
    name: 'PostgreSQL (store and queue)',
    available: server,
    async start() {
      const schema = `otel_${randomBytes(5).toString('hex')}`;
      const connection = { connectionString: DATABASE_URL };
      return {
        store: postgresStore({ ...connection, schema }),
        make: () =>
          postgresTransport({
            ...connection,
            schema,
            pollIntervalMs: 50,
            visibilityTimeoutMs: 5000,
          }),
        async stop() {
          const admin = new pg.Client({ connectionString: DATABASE_URL });
          await admin.connect();
          await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          await admin.end();
        },
      };
    },
  },
];

describe('telemetry over real transports', () => {
  it.for(TRANSPORTS)(
    '$name: one trace across two workers, the retry’s two attempts, the poison’s error, the store’s counts, no secret',
    { timeout: 120_000 },
    async (transport, { skip }) => {
      if (!transport.available) skip();
      const backend = await transport.start();
      try {
        await runTraced({ store: backend.store, transports: [backend.make(), backend.make()] });
        await backend.after?.();
      } finally {
        await backend.stop();
      }
    },
  );
});

describe('telemetry on the Functions path', () => {
  it('the trigger helpers pass the enqueue time to handle(): the queue wait is recorded', async () => {
    const otel = otelHarness();
    const transport = memoryTransport();
    const yard = createSwitchyard({
      jobs: [job],
      store: memoryStore(),
      transports: { functions: transport },
      logger: silentLogger,
      reconcile: { intervalMs: 0 },
      telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider },
    });
    try {
      await yard.submit('traced', { token: SECRET });
      const [stageMsg] = await transport.receive('stage', { maxMessages: 1 });
      expect(await yard.handle(stageMsg!.body)).toEqual({ action: 'complete' });
      const [a, b] = await transport.receive('task', { maxMessages: 2 });
      // As the hosts hand them over: Service Bus an ISO string, Storage Queues a Date.
      const serviceBus = fromServiceBusTrigger(a!.body, {
        triggerMetadata: {
          deliveryCount: 1,
          messageId: 'm-a',
          enqueuedTimeUtc: new Date(Date.now() - 30_000).toISOString(),
        },
      });
      const storage = fromStorageQueueTrigger(b!.body, {
        triggerMetadata: {
          dequeueCount: 1,
          id: 'm-b',
          insertionTime: new Date(Date.now() - 30_000),
        },
      });
      for (const { body, meta } of [serviceBus, storage])
        expect(await yard.handle(body, meta)).toEqual({ action: 'complete' });
      const waits = (await otel.metrics()).filter((p) => p.name === 'switchyard.task.queue_wait');
      expect(waits).toHaveLength(1);
      expect(waits[0]).toMatchObject({
        value: 2,
        attributes: { 'switchyard.transport': 'functions' },
      });
      expect(waits[0]!.sum).toBeGreaterThanOrEqual(60);
    } finally {
      await yard.close();
      await otel.shutdown();
    }
  });
});
