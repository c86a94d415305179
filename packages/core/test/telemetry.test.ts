/**
 * OpenTelemetry on the memory drivers, through the SDK's in-memory exporters: a job is one trace
 * from submit to finalize across workers, retries and poisons show on their task spans, metrics
 * carry the store's counts, and no task input or job param reaches an attribute.
 */

import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
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
import { decodeEnvelope, type Transport } from '@switchyard/core/driver';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import type { EnvelopeTrace } from '../src/envelope.js';
import { observeTask } from '../src/telemetry/task-observation.js';
import { Telemetry } from '../src/telemetry/telemetry.js';
import { startYards } from './harness.js';
import { type OtelHarness, otelHarness, parentOf, total } from './otel-harness.js';

const SECRET = 'sk-live-DO-NOT-LEAK-7f3a';
const INPUT_MARK = 'input-marker-93b1';

let cleanup: (() => Promise<void>) | undefined;
let otel: OtelHarness | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
  await otel?.shutdown();
  otel = undefined;
});
beforeAll(() => {
  // The application's context manager: spans a handler starts become the task span's children.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
});

const echo = defineTask({
  name: 'echo',
  input: z.object({ i: z.number(), note: z.string() }),
  handler: ({ i }) => i,
});

/** Three stages of `n` tasks each; params carry a secret the fan-out copies into inputs. */
const threeStages = (n: number) =>
  defineJob({
    name: 'three',
    params: z.object({ token: z.string() }),
    stages: ['a', 'b', 'c'].map((name) =>
      stage({
        name,
        task: echo,
        fanOut: ({ token }: { token: string }) =>
          Array.from({ length: n }, (_, i) => ({ i, note: `${INPUT_MARK} ${token}` })),
      }),
    ),
    finalize: () => ({ done: true }),
  });

function byName(spans: ReadableSpan[], name: string): ReadableSpan[] {
  return spans.filter((s) => s.name === name);
}

function attr(span: ReadableSpan, key: string): unknown {
  return span.attributes[key];
}

describe('telemetry: one trace per job', () => {
  it('a three-stage job across two workers is one trace: submit → stage → fan-out → task, advance → next stage → finalize', async () => {
    otel = otelHarness();
    const h = startYards([threeStages(6)], {
      workers: 2,
      telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider },
      batching: { packTasks: 1 },
    });
    cleanup = h.stop;
    const app = otel.tracerProvider.getTracer('app').startSpan('http POST /jobs');
    const { jobId } = await context.with(trace.setSpan(context.active(), app), () =>
      h.yard.submit('three', { token: SECRET }),
    );
    app.end();
    expect((await h.yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    await new Promise((r) => setTimeout(r, 50));
    const spans = otel.spans();
    const traceId = app.spanContext().traceId;
    const ofJob = spans.filter((s) => s.spanContext().traceId === traceId);
    // One job ran: every span (barrier batches included) is in its trace.
    expect(ofJob).toHaveLength(spans.length);
    const ids = new Map(ofJob.map((s) => [s.spanContext().spanId, s]));
    const parent = (s: ReadableSpan) => ids.get(parentOf(s));

    const [submit] = byName(ofJob, 'switchyard submit');
    expect(submit).toBeDefined();
    expect(submit!.kind).toBe(SpanKind.PRODUCER);
    expect(parent(submit!)).toBe(ofJob.find((s) => s.name === 'http POST /jobs'));
    expect(attr(submit!, 'switchyard.job.id')).toBe(jobId);
    expect(attr(submit!, 'messaging.system')).toBe('memory');

    const stages = byName(ofJob, 'switchyard stage');
    const fanOuts = byName(ofJob, 'switchyard fan-out');
    const tasks = byName(ofJob, 'switchyard task');
    const advances = byName(ofJob, 'switchyard advance');
    const [finalize] = byName(ofJob, 'switchyard finalize');
    expect(stages.map((s) => attr(s, 'switchyard.stage')).sort()).toEqual([0, 1, 2]);
    expect(fanOuts).toHaveLength(3);
    expect(tasks).toHaveLength(18);
    expect(advances.map((s) => attr(s, 'switchyard.stage')).sort()).toEqual([0, 1, 2]);
    expect(finalize).toBeDefined();

    for (const s of stages) {
      expect(s.kind).toBe(SpanKind.CONSUMER);
      const stageIndex = attr(s, 'switchyard.stage');
      const from = parent(s)!;
      if (stageIndex === 0) expect(from).toBe(submit);
      else {
        expect(from.name).toBe('switchyard advance');
        expect(attr(from, 'switchyard.stage')).toBe((stageIndex as number) - 1);
      }
    }
    expect(parent(finalize!)?.name).toBe('switchyard advance');
    expect(attr(parent(finalize!)!, 'switchyard.stage')).toBe(2);
    for (const f of fanOuts) {
      expect(parent(f)?.name).toBe('switchyard stage');
      expect(attr(f, 'switchyard.stage')).toBe(attr(parent(f)!, 'switchyard.stage'));
      expect(attr(f, 'switchyard.tasks')).toBe(6);
      expect(attr(f, 'switchyard.chunks')).toBeGreaterThanOrEqual(1);
    }
    for (const t of tasks) {
      expect(t.kind).toBe(SpanKind.CONSUMER);
      const f = parent(t)!;
      expect(f.name).toBe('switchyard fan-out');
      expect(attr(t, 'switchyard.stage')).toBe(attr(f, 'switchyard.stage'));
      expect(attr(t, 'switchyard.task.outcome')).toBe('succeeded');
      expect(attr(t, 'messaging.operation.type')).toBe('process');
      expect(attr(t, 'switchyard.job.name')).toBe('three');
      expect(attr(t, 'switchyard.transport')).toBe('memory');
      expect(attr(t, 'switchyard.attempt')).toBe(1);
    }
    // Every advance belongs to the job's trace (a parent span of this trace).
    for (const a of advances) expect(parent(a)).toBeDefined();
  });

  it('a pack carries one context: its tasks are children of the fan-out; a handler’s own spans are children of its task', async () => {
    otel = otelHarness();
    const appTracer = otel.tracerProvider.getTracer('app');
    const traced = defineTask({
      name: 'traced',
      input: z.object({ i: z.number() }),
      handler: ({ i }) => {
        appTracer.startSpan('user work').end();
        return i;
      },
    });
    const job = defineJob({
      name: 'packed',
      stages: [
        stage({
          name: 'only',
          task: traced,
          fanOut: () => Array.from({ length: 40 }, (_, i) => ({ i })),
        }),
      ],
    });
    const h = startYards([job], {
      telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider },
      batching: { packTasks: 10 },
    });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('packed', undefined);
    expect((await h.yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    const spans = otel.spans();
    const [fanOut] = byName(spans, 'switchyard fan-out');
    const tasks = byName(spans, 'switchyard task');
    expect(tasks).toHaveLength(40);
    for (const t of tasks) expect(parentOf(t)).toBe(fanOut!.spanContext().spanId);
    expect(attr(fanOut!, 'messaging.batch.message_count')).toBe(4);
    const user = byName(spans, 'user work');
    expect(user).toHaveLength(40);
    const taskIds = new Set(tasks.map((t) => t.spanContext().spanId));
    for (const u of user) expect(taskIds.has(parentOf(u))).toBe(true);
  });

  it('a retried task shows both attempts; a poisoned task shows its error and the dead-letter', async () => {
    otel = otelHarness();
    const flaky = defineTask({
      name: 'flaky',
      input: z.object({ i: z.number() }),
      retry: { maxAttempts: 2, initialDelayMs: 10, jitter: 0 },
      handler: ({ i }, ctx) => {
        if (i === 0 && ctx.attempt === 1) throw new Error('transient failure');
        if (i === 1) throw new Error('always broken');
        return i;
      },
    });
    const job = defineJob({
      name: 'flaky-job',
      stages: [
        stage({
          name: 'only',
          task: flaky,
          fanOut: () => Array.from({ length: 4 }, (_, i) => ({ i })),
          tolerateFailures: 1,
        }),
      ],
    });
    const h = startYards([job], {
      telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider },
    });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('flaky-job', undefined);
    expect((await h.yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    const tasks = byName(otel.spans(), 'switchyard task');
    const of = (index: number) =>
      tasks
        .filter((t) => attr(t, 'switchyard.task.index') === index)
        .sort(
          (a, b) =>
            (attr(a, 'switchyard.attempt') as number) - (attr(b, 'switchyard.attempt') as number),
        );
    const retried = of(0);
    expect(retried.map((t) => attr(t, 'switchyard.attempt'))).toEqual([1, 2]);
    expect(retried.map((t) => attr(t, 'switchyard.task.outcome'))).toEqual(['retry', 'succeeded']);
    expect(retried[0]!.status.code).toBe(SpanStatusCode.ERROR);
    expect(
      retried[0]!.events.find((e) => e.name === 'exception')?.attributes?.['exception.message'],
    ).toBe('transient failure');
    expect(retried[1]!.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(retried[0]!.spanContext().traceId).toBe(retried[1]!.spanContext().traceId);
    const poisoned = of(1);
    expect(poisoned.map((t) => attr(t, 'switchyard.task.outcome'))).toEqual([
      'retry',
      'dead_letter',
    ]);
    expect(attr(poisoned[1]!, 'switchyard.dead_letter.reason')).toBe('MaxAttemptsExceeded');
    expect(poisoned[1]!.status).toMatchObject({
      code: SpanStatusCode.ERROR,
      message: 'always broken',
    });

    const points = await otel.metrics();
    expect(total(points, 'switchyard.tasks.retried')).toBe(2);
    expect(total(points, 'switchyard.tasks.poisoned')).toBe(1);
    expect(total(points, 'switchyard.tasks.completed')).toBe(3);
  });

  it('sends no trace fields without an SDK, and a job without them still runs', async () => {
    const sent: string[] = [];
    const inner = memoryTransport({ visibilityTimeoutMs: 500 });
    const spy: Transport = Object.assign(Object.create(inner) as Transport, {
      send: (
        queue: Parameters<Transport['send']>[0],
        messages: Parameters<Transport['send']>[1],
      ) => {
        for (const m of messages) sent.push(m.body);
        return inner.send(queue, messages);
      },
    });
    const h = startYards([threeStages(3)], { transports: [spy] });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('three', { token: 't' });
    expect((await h.yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    expect(sent.length).toBeGreaterThan(0);
    for (const body of sent) expect(body).not.toContain('traceparent');
  });

  it('an SDK registered globally after the Switchyard started traces the tasks from then on', async () => {
    otel = otelHarness();
    // No telemetry option: the Switchyard uses the global provider, empty when it starts.
    const h = startYards([threeStages(3)]);
    cleanup = async () => {
      await h.stop();
      trace.disable();
    };
    const before = await h.yard.submit('three', { token: 'before' });
    expect((await h.yard.waitFor(before.jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    expect(trace.setGlobalTracerProvider(otel.tracerProvider)).toBe(true);
    const after = await h.yard.submit('three', { token: 'after' });
    expect((await h.yard.waitFor(after.jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    await new Promise((r) => setTimeout(r, 50));
    const tasks = byName(otel.spans(), 'switchyard task');
    expect(tasks).toHaveLength(9);
    // Each is a child of its fan-out's span, in the job's trace: the message's context was read.
    const ids = new Map(otel.spans().map((s) => [s.spanContext().spanId, s]));
    for (const task of tasks) {
      expect(attr(task, 'switchyard.job.id')).toBe(after.jobId);
      expect(ids.get(parentOf(task))?.name).toMatch(/^switchyard (fan-out|task window)/);
    }
  });
});

describe('telemetry: metrics', () => {
  it('carry the counts the store has, with the transport as an attribute', async () => {
    otel = otelHarness();
    const yard = createSwitchyard({
      jobs: [threeStages(25)],
      store: memoryStore(),
      transports: { fast: memoryTransport({ visibilityTimeoutMs: 500 }) },
      logger: silentLogger,
      reconcile: { intervalMs: 0 },
      telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider },
    });
    const controller = new AbortController();
    const working = yard.work({ concurrency: 16, signal: controller.signal, waitMs: 20 });
    cleanup = async () => {
      controller.abort();
      await working;
      await yard.close();
    };
    const { jobId } = await yard.submit('three', { token: SECRET });
    expect((await yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    const stages = await yard.store.getStages(jobId);
    const succeeded = stages.reduce((n, s) => n + s.succeeded, 0);
    const points = await otel.metrics();
    const on = { 'switchyard.transport': 'fast' };
    expect(total(points, 'switchyard.tasks.completed', on)).toBe(succeeded);
    expect(succeeded).toBe(75);
    expect(total(points, 'switchyard.fanout.tasks', on)).toBe(75);
    expect(total(points, 'switchyard.task.duration', on)).toBe(75);
    expect(total(points, 'switchyard.task.queue_wait', on)).toBe(75);
    expect(total(points, 'switchyard.jobs.started', on)).toBe(1);
    expect(
      total(points, 'switchyard.jobs.finished', { ...on, 'switchyard.job.status': 'succeeded' }),
    ).toBe(1);
    expect(total(points, 'switchyard.tasks.in_flight', on)).toBe(0);
    expect(total(points, 'switchyard.tasks.poisoned', on)).toBe(0);
  });

  it('handle(): a task’s queue wait is measured from the enqueue time the host reports', async () => {
    otel = otelHarness();
    const transport = memoryTransport();
    const yard = createSwitchyard({
      jobs: [threeStages(2)],
      store: memoryStore(),
      transports: { host: transport },
      logger: silentLogger,
      reconcile: { intervalMs: 0 },
      telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider },
    });
    cleanup = () => yard.close();
    await yard.submit('three', { token: 't' });
    const [stageMsg] = await transport.receive('stage', { maxMessages: 1 });
    expect(await yard.handle(stageMsg!.body)).toEqual({ action: 'complete' });
    const [first, second] = await transport.receive('task', { maxMessages: 2 });
    // Enqueued a minute ago by the host's clock: the wait recorded is at least that.
    const enqueuedAt = new Date(Date.now() - 60_000);
    expect(await yard.handle(first!.body, { deliveryCount: 1, enqueuedAt })).toEqual({
      action: 'complete',
    });
    // An old host (no enqueue time) or an unparseable one: no wait is recorded, the task runs.
    expect(await yard.handle(second!.body, { enqueuedAt: new Date(Number.NaN) })).toEqual({
      action: 'complete',
    });
    const [wait, ...more] = (await otel.metrics()).filter(
      (p) => p.name === 'switchyard.task.queue_wait',
    );
    expect(more).toEqual([]);
    expect(wait).toMatchObject({ value: 1, attributes: { 'switchyard.transport': 'host' } });
    expect(wait!.sum).toBeGreaterThanOrEqual(60);
    expect(total(await otel.metrics(), 'switchyard.tasks.completed')).toBe(2);
  });

  it('no span or metric carries a task input, a job param or a secret', async () => {
    otel = otelHarness();
    const h = startYards([threeStages(5)], {
      workers: 2,
      telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider },
      batching: { packTasks: 3 },
    });
    cleanup = h.stop;
    const { jobId } = await h.yard.submit('three', { token: SECRET });
    expect((await h.yard.waitFor(jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    const spans = otel.spans();
    expect(spans.length).toBeGreaterThan(20);
    const exported = JSON.stringify({
      spans: spans.map((s) => ({
        name: s.name,
        attributes: s.attributes,
        events: s.events,
        status: s.status,
        links: s.links,
      })),
      metrics: await otel.metrics(),
    });
    expect(exported).toContain(jobId);
    expect(exported).not.toContain(SECRET);
    expect(exported).not.toContain(INPUT_MARK);
  });
});

describe('telemetry: envelopes', () => {
  const base = { v: 1, kind: 'stage', jobId: 'j', stage: 0 };
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

  it('decode with their trace context, and old ones without it', () => {
    expect(decodeEnvelope(JSON.stringify(base))).toEqual(base);
    expect(decodeEnvelope({ ...base, traceparent, tracestate: 'congo=t61rcWkgMzE' })).toEqual({
      ...base,
      traceparent,
      tracestate: 'congo=t61rcWkgMzE',
    });
  });

  it('drop a malformed trace header instead of failing the message', () => {
    for (const bad of [
      'garbage',
      '00-00000000000000000000000000000000-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
      '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01',
      42,
      null,
    ])
      expect(decodeEnvelope({ ...base, traceparent: bad, tracestate: 'a=b' })).toEqual(base);
    expect(decodeEnvelope({ ...base, traceparent, tracestate: 'x'.repeat(600) })).toEqual({
      ...base,
      traceparent,
    });
  });
});

describe('telemetry: task spans without an SDK', () => {
  const attempt = (index: number) => ({
    jobId: 'job',
    stage: 0,
    index,
    taskId: `job:0:${index}`,
    attempt: 1,
  });
  const observeMany = (telemetry: Telemetry, count: number, envelope: EnvelopeTrace = {}) => {
    for (let i = 0; i < count; i++)
      observeTask(telemetry, { envelope }, attempt(i)).end({ action: 'complete' });
  };

  it('start no span per task until an SDK is registered, then record them within 1,024 tasks', () => {
    otel = otelHarness();
    const telemetry = new Telemetry({}, () => 'memory');
    const started = vi.spyOn(telemetry.tracer, 'startSpan');
    observeMany(telemetry, 2000);
    expect(started).not.toHaveBeenCalled();
    // A message sent under a span carries its context: its task's span is started even so.
    observeMany(telemetry, 1, { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` });
    expect(started).toHaveBeenCalledTimes(1);
    try {
      expect(trace.setGlobalTracerProvider(otel.tracerProvider)).toBe(true);
      observeMany(telemetry, 1024);
      expect(byName(otel.spans(), 'switchyard task').length).toBeGreaterThan(0);
    } finally {
      trace.disable();
    }
  });

  it('always start them with a tracer provider of their own', () => {
    otel = otelHarness();
    const telemetry = new Telemetry({ tracerProvider: otel.tracerProvider }, () => 'memory');
    observeMany(telemetry, 3);
    expect(byName(otel.spans(), 'switchyard task')).toHaveLength(3);
  });
});
