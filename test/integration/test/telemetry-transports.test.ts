/**
 * One trace per job on every real transport: a three-stage job run by two workers over the
 * Service Bus emulator, Storage Queues (Azurite) and PostgreSQL is one trace from submit to
 * finalize, a retried task shows both attempts and a poisoned one its error, and metrics carry
 * the store's counts — read through the OpenTelemetry SDK's in-memory exporters.
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
  silentLogger,
  stage,
} from '@switchyard/core';
import type { Store, Transport } from '@switchyard/core/driver';
import { postgresStore, postgresTransport } from '@switchyard/driver-postgres';
import { DIAGNOSTIC_ID, serviceBusTransport } from '@switchyard/driver-servicebus';
import { storageQueueTransport } from '@switchyard/driver-storagequeue';
import { startEmulator } from '@switchyard/servicebus-emulator';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { otelHarness, parentOf, total } from '../../../packages/core/test/otel-harness.js';
import { startAzurite } from '../../../packages/driver-storagequeue/test/azurite.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const TASKS = 4;

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
  input: z.object({ stage: z.string(), i: z.number() }),
  retry: { maxAttempts: 2, initialDelayMs: 50, jitter: 0 },
  handler: ({ stage, i }, ctx) => {
    if (stage === 'b' && i === 0 && ctx.attempt === 1) throw new Error('transient failure');
    if (stage === 'c' && i === 1) throw new Error('always broken');
    return i;
  },
});
const job = defineJob({
  name: 'traced',
  stages: ['a', 'b', 'c'].map((name) =>
    stage({
      name,
      task: work,
      fanOut: () => Array.from({ length: TASKS }, (_, i) => ({ stage: name, i })),
      tolerateFailures: 1,
    }),
  ),
});

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
    const { jobId } = await yards[0]!.submit('traced', undefined);
    const view = await yards[0]!.waitFor(jobId, {
      pollIntervalMs: 50,
      signal: AbortSignal.timeout(60_000),
    });
    expect(view.status).toBe('succeeded');
    const spans = otel.spans();
    const [submit] = spans.filter((s) => s.name === 'switchyard submit');
    const traceId = submit!.spanContext().traceId;
    expect(spans.every((s) => s.spanContext().traceId === traceId)).toBe(true);
    const ids = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    const parent = (s: ReadableSpan) => ids.get(parentOf(s));
    const named = (n: string) => spans.filter((s) => s.name === n);
    expect(named('switchyard stage')).toHaveLength(3);
    expect(named('switchyard finalize')).toHaveLength(1);
    expect(parent(named('switchyard finalize')[0]!)?.name).toBe('switchyard advance');
    for (const s of named('switchyard stage'))
      expect(parent(s)?.name).toBe(
        s.attributes['switchyard.stage'] === 0 ? 'switchyard submit' : 'switchyard advance',
      );
    const tasks = named('switchyard task');
    for (const t of tasks) {
      expect(parent(t)?.name).toBe('switchyard fan-out');
      expect(t.attributes['switchyard.transport']).toBe('path');
    }
    const attempts = (stageIndex: number, index: number) =>
      tasks
        .filter(
          (t) =>
            t.attributes['switchyard.stage'] === stageIndex &&
            t.attributes['switchyard.task.index'] === index,
        )
        .map((t) => [t.attributes['switchyard.attempt'], t.attributes['switchyard.task.outcome']])
        .sort();
    expect(attempts(1, 0)).toEqual([
      [1, 'retry'],
      [2, 'succeeded'],
    ]);
    expect(attempts(2, 1)).toEqual([
      [1, 'retry'],
      [2, 'dead_letter'],
    ]);
    const poisoned = tasks.find((t) => t.attributes['switchyard.task.outcome'] === 'dead_letter');
    expect(poisoned!.status).toMatchObject({
      code: SpanStatusCode.ERROR,
      message: 'always broken',
    });
    const stages = await options.store.getStages(jobId);
    const points = await otel.metrics();
    expect(total(points, 'switchyard.tasks.completed')).toBe(
      stages.reduce((n, s) => n + s.succeeded, 0),
    );
    expect(total(points, 'switchyard.tasks.poisoned')).toBe(
      stages.reduce((n, s) => n + s.failed, 0),
    );
    expect(total(points, 'switchyard.tasks.retried')).toBe(2);
    return { jobId, spans };
  } finally {
    controller.abort();
    await Promise.all(loops);
    await Promise.all(yards.map((y) => y.close()));
    await otel.shutdown();
  }
}

describe('telemetry over real transports', () => {
  it('Service Bus (emulator): one trace across two workers; Diagnostic-Id set from the traceparent', {
    timeout: 120_000,
  }, async () => {
    const emulator = await startEmulator({ port: 0, lockDurationMs: 5000 });
    try {
      const name = randomBytes(4).toString('hex');
      const queues = { stage: `otel-jobs-${name}`, task: `otel-tasks-${name}` };
      const make = () =>
        serviceBusTransport({ connectionString: emulator.connectionString, queues });
      await runTraced({ store: memoryStore(), transports: [make(), make()] });

      const transport = make();
      const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      await transport.send('task', [{ body: '{}', messageId: 'm1', traceparent }]);
      await transport.close();
      const client = new ServiceBusClient(emulator.connectionString);
      const receiver = client.createReceiver(queues.task, { receiveMode: 'receiveAndDelete' });
      const [raw] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5000 });
      expect(raw?.applicationProperties?.[DIAGNOSTIC_ID]).toBe(traceparent);
      await client.close();
    } finally {
      await emulator.close();
    }
  });

  it('Storage Queues (Azurite): one trace across two workers', { timeout: 120_000 }, async () => {
    const azurite = await startAzurite();
    try {
      const name = `otel-${randomBytes(4).toString('hex')}`;
      const make = () =>
        storageQueueTransport({
          connectionString: azurite.connectionString,
          queues: { stage: `${name}-s`, task: `${name}-t` },
        });
      await runTraced({ store: memoryStore(), transports: [make(), make()] });
    } finally {
      await azurite.stop();
    }
  });

  it.skipIf(!server)(
    'PostgreSQL (store and queue): one trace across two workers',
    {
      timeout: 120_000,
    },
    async () => {
      const schema = `otel_${randomBytes(5).toString('hex')}`;
      const connection = { connectionString: DATABASE_URL };
      const store = postgresStore({ ...connection, schema });
      const make = () =>
        postgresTransport({ ...connection, schema, pollIntervalMs: 50, visibilityTimeoutMs: 5000 });
      try {
        await runTraced({ store, transports: [make(), make()] });
      } finally {
        const admin = new pg.Client({ connectionString: DATABASE_URL });
        await admin.connect();
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await admin.end();
      }
    },
  );
});
