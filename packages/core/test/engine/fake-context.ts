/**
 * A small engine for testing one module at a time: a real {@link EngineContext} (`resolveOptions`
 * + `createContext`) over the memory store and a memory transport that records what is sent per
 * queue, the engine's modules wired as `createSwitchyard` wires them, small job definitions, and
 * shortcuts that put a job's records in a given state through the store's own methods.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  defineJob,
  stage as defineStage,
  defineTask,
  type FailureTolerance,
  type FinalizeContext,
  type RetryPolicy,
  type StageDefinition,
  type TaskContext,
} from '../../src/define.js';
import type { AnyJob } from '../../src/engine/api.js';
import { Barrier } from '../../src/engine/barrier.js';
import type { BatchingOptions } from '../../src/engine/batching.js';
import { createContext, type EngineContext } from '../../src/engine/context.js';
import { Dispatcher } from '../../src/engine/dispatch.js';
import type { InboundMessage } from '../../src/engine/inbound.js';
import { resolveOptions, type TransportState } from '../../src/engine/options.js';
import { taskMessage } from '../../src/engine/outbox.js';
import { Reconciler } from '../../src/engine/reconciler.js';
import { StageAdvance } from '../../src/engine/stages/advance.js';
import { StageRunner } from '../../src/engine/stages/stage-runner.js';
import { TaskWindow } from '../../src/engine/stages/task-window.js';
import { AbortGroup } from '../../src/engine/tasks/handler.js';
import { PackRunner } from '../../src/engine/tasks/pack-runner.js';
import { TaskRunner } from '../../src/engine/tasks/task-runner.js';
import type { ReconcileOptions } from '../../src/engine/types.js';
import { decodeEnvelope, type Envelope, type TaskEnvelope } from '../../src/envelope.js';
import type { Logger } from '../../src/logger.js';
import { memoryStore } from '../../src/memory/memory-store.js';
import { memoryTransport } from '../../src/memory/memory-transport.js';
import type { RetentionOptions } from '../../src/operations/purge.js';
import type { Store } from '../../src/store.js';
import type {
  DeadLetter,
  OutgoingMessage,
  QueueKind,
  ReceivedMessage,
  ReceiveOptions,
  Settlement,
  Transport,
  TransportLimits,
} from '../../src/transport.js';

/** A transport that passes everything to a real one and records every message sent, per queue. */
export class RecordingTransport implements Transport {
  readonly name: string;
  readonly limits: TransportLimits;
  /** Messages sent, per queue, in the order sent. */
  readonly sent: Record<QueueKind, OutgoingMessage[]> = { stage: [], task: [] };
  /** `send` calls made, per queue. */
  readonly sendCalls: Record<QueueKind, number> = { stage: 0, task: 0 };

  constructor(readonly inner: Transport) {
    this.name = inner.name;
    this.limits = inner.limits;
  }

  send(
    queue: QueueKind,
    messages: readonly OutgoingMessage[],
    options?: { abortSignal?: AbortSignal },
  ): Promise<void> {
    this.sendCalls[queue]++;
    this.sent[queue].push(...messages);
    return this.inner.send(queue, messages, options);
  }

  /** The messages sent on `queue`, decoded. */
  envelopes(queue: QueueKind): Envelope[] {
    return this.sent[queue].map((m) => decodeEnvelope(m.body));
  }

  /** The stage numbers of the stage messages sent for a job, in order. */
  stageMessages(jobId: string): number[] {
    return this.envelopes('stage')
      .filter((e) => e.jobId === jobId)
      .map((e) => e.stage);
  }

  /** Forgets what was recorded (the messages stay in the queues). */
  clear(): void {
    this.sent.stage = [];
    this.sent.task = [];
    this.sendCalls.stage = 0;
    this.sendCalls.task = 0;
  }

  receive(queue: QueueKind, options: ReceiveOptions): Promise<ReceivedMessage[]> {
    return this.inner.receive(queue, options);
  }

  settle(settlements: readonly Settlement[]): Promise<void> {
    return this.inner.settle(settlements);
  }

  extendLock(message: ReceivedMessage, ms: number): Promise<void> {
    return this.inner.extendLock?.(message, ms) ?? Promise.resolve();
  }

  listDeadLetters(queue: QueueKind, options?: { limit?: number }): Promise<DeadLetter[]> {
    return this.inner.listDeadLetters?.(queue, options) ?? Promise.resolve([]);
  }

  ping(): Promise<void> {
    return this.inner.ping?.() ?? Promise.resolve();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** A logger that keeps what it is told, to assert on what the engine reports. */
export class RecordingLogger implements Logger {
  readonly lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  debug = (message: string, fields?: Record<string, unknown>) => this.log('debug', message, fields);
  info = (message: string, fields?: Record<string, unknown>) => this.log('info', message, fields);
  warn = (message: string, fields?: Record<string, unknown>) => this.log('warn', message, fields);
  error = (message: string, fields?: Record<string, unknown>) => this.log('error', message, fields);
  private log(level: string, message: string, fields?: Record<string, unknown>) {
    this.lines.push(fields ? { level, message, fields } : { level, message });
  }
}

/** The engine's modules, wired over one context as `createSwitchyard` wires them. */
export interface EngineModules {
  advance: StageAdvance;
  barrier: Barrier;
  tasks: TaskRunner;
  packs: PackRunner;
  stages: StageRunner;
  dispatcher: Dispatcher;
  window: TaskWindow;
  reconciler(instanceId?: string): Reconciler;
}

export function engineModules(ctx: EngineContext): EngineModules {
  const advance = new StageAdvance(ctx);
  const window = new TaskWindow(ctx);
  const barrier = new Barrier({
    store: ctx.store,
    onStageComplete: (c) => advance.onStageComplete(c),
    onRoom: (stages) => window.freed(stages),
  });
  const tasks = new TaskRunner(ctx, { barrier, advance });
  const stages = new StageRunner(ctx, advance, window);
  const packs = new PackRunner({ ctx, barrier, advance, tasks });
  return {
    advance,
    barrier,
    tasks,
    packs,
    stages,
    dispatcher: new Dispatcher({ ctx, stages, tasks, packs }),
    window,
    reconciler: (instanceId = randomUUID()) => new Reconciler(ctx, { advance, window, instanceId }),
  };
}

export interface FakeEngineOptions {
  jobs?: readonly AnyJob[];
  batching?: BatchingOptions;
  retry?: RetryPolicy;
  reconcile?: ReconcileOptions;
  retention?: RetentionOptions;
  /** Limits of the memory transport (e.g. a small `maxMessageBytes`). */
  limits?: Partial<TransportLimits>;
}

export interface FakeEngine {
  ctx: EngineContext;
  store: Store;
  transport: RecordingTransport;
  /** The one configured transport, as the engine sends through it. */
  target: TransportState;
  logger: RecordingLogger;
  /** The shutdown group task runs are given (never aborted unless a test aborts `shutdown`). */
  group: AbortGroup;
  shutdown: AbortController;
  modules: EngineModules;
}

/** A real engine context over the memory store and one recording memory transport named `memory`. */
export function fakeEngine(options: FakeEngineOptions = {}): FakeEngine {
  const store = memoryStore();
  const transport = new RecordingTransport(
    memoryTransport({ name: 'memory', ...(options.limits ? { limits: options.limits } : {}) }),
  );
  const logger = new RecordingLogger();
  const settings = resolveOptions({
    jobs: options.jobs ?? [doubleJob],
    store,
    transports: [transport],
    logger,
    ...(options.batching ? { batching: options.batching } : {}),
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.reconcile ? { reconcile: options.reconcile } : {}),
    ...(options.retention ? { retention: options.retention } : {}),
  });
  const ctx = createContext(settings, store);
  const shutdown = new AbortController();
  return {
    ctx,
    store,
    transport,
    target: ctx.transportOf('memory'),
    logger,
    group: new AbortGroup(shutdown.signal),
    shutdown,
    modules: engineModules(ctx),
  };
}

/** Params of the test jobs: the inputs their stages fan out to. */
export interface Inputs {
  inputs: unknown[];
}

export interface StageSpec {
  name?: string;
  handler?: (input: unknown, ctx: TaskContext) => unknown;
  retry?: RetryPolicy;
  timeoutMs?: number;
  tolerateFailures?: FailureTolerance;
  /** Validate inputs as numbers. */
  numbers?: boolean;
  fanOut?: StageDefinition<Inputs>['fanOut'];
}

/** A job whose every stage fans out to `params.inputs` (unless its spec says otherwise). */
export function testJob(options: {
  name: string;
  stages: StageSpec[];
  finalize?: (ctx: FinalizeContext<Inputs>) => unknown;
}): AnyJob {
  return defineJob({
    name: options.name,
    stages: options.stages.map((s, i) => {
      const name = s.name ?? `s${i}`;
      const handler = s.handler ?? ((n: unknown) => (n as number) * 2);
      const common = {
        name: `${options.name}-${name}`,
        ...(s.retry ? { retry: s.retry } : {}),
        ...(s.timeoutMs !== undefined ? { timeoutMs: s.timeoutMs } : {}),
      };
      const task = s.numbers
        ? defineTask({ ...common, input: z.number(), handler })
        : defineTask({ ...common, handler });
      return defineStage<Inputs, unknown, unknown>({
        name,
        task,
        fanOut: s.fanOut ?? ((p) => p.inputs),
        ...(s.tolerateFailures !== undefined ? { tolerateFailures: s.tolerateFailures } : {}),
      });
    }),
    ...(options.finalize ? { finalize: options.finalize } : {}),
  }) as AnyJob;
}

/** One stage doubling numbers. */
export const doubleJob = testJob({ name: 'double', stages: [{}] });

/** Creates a job's record (queued, no stage started) and returns its id. */
export async function createJob(
  fake: FakeEngine,
  options: { name: string; stageCount: number; params?: unknown },
): Promise<string> {
  const id = `${options.name}-${randomUUID()}`;
  await fake.store.createJob({
    id,
    name: options.name,
    params: options.params ?? null,
    transport: 'memory',
    stageCount: options.stageCount,
  });
  return id;
}

/**
 * Starts stage `stage` of a job (every stage before it must be complete) and inserts its tasks;
 * sealed unless `seal` is false. The tasks' inputs are `inputs`, indexes 0…n-1.
 */
export async function startStage(
  fake: FakeEngine,
  options: { jobId: string; stage: number; inputs: unknown[]; seal?: boolean; name?: string },
): Promise<void> {
  const { jobId, stage, inputs } = options;
  const started = await fake.store.startStage(jobId, stage, options.name ?? `s${stage}`);
  if (!started.advanced) throw new Error(`stage ${stage} of ${jobId} did not start`);
  await fake.store.insertTasks(
    jobId,
    stage,
    inputs.map((input, index) => ({ index, input })),
  );
  if (options.seal !== false) await fake.store.sealStage(jobId, stage, inputs.length);
}

/** Records every task of a sealed stage as finished (`failed` for the indexes listed). */
export async function finishStage(
  fake: FakeEngine,
  options: { jobId: string; stage: number; failed?: number[]; result?: (index: number) => unknown },
) {
  const { jobId, stage } = options;
  const page = await fake.store.listTasks(jobId, { stage, limit: 10_000 });
  const failed = new Set(options.failed ?? []);
  return fake.store.completeTasks(
    page.tasks.map((t) =>
      failed.has(t.index)
        ? {
            jobId,
            stage,
            index: t.index,
            taskId: t.id,
            status: 'failed' as const,
            error: { name: 'Error', message: `task ${t.index} broke` },
          }
        : {
            jobId,
            stage,
            index: t.index,
            taskId: t.id,
            status: 'succeeded' as const,
            result: options.result ? options.result(t.index) : t.index,
          },
    ),
  );
}

/** A job of definition `job` with stage 0 started over `inputs` and sealed. */
export async function runningJob(
  fake: FakeEngine,
  job: AnyJob,
  inputs: unknown[],
  options: { seal?: boolean } = {},
): Promise<string> {
  const jobId = await createJob(fake, {
    name: job.name,
    stageCount: job.stages.length,
    params: { inputs },
  });
  await startStage(fake, {
    jobId,
    stage: 0,
    inputs,
    name: job.stages[0]!.name,
    ...(options.seal === false ? { seal: false } : {}),
  });
  return jobId;
}

/** The task message a fan-out sends for one task (or a re-drive, with `attempts`), decoded. */
export function taskEnvelope(
  fake: FakeEngine,
  spec: { jobId: string; stage: number; index: number; input: unknown; attempts?: number },
): TaskEnvelope {
  return decodeEnvelope(taskMessage(fake.target, spec).body) as TaskEnvelope;
}

/** A message as a host or receive loop hands it to the engine. */
export function inbound(body: unknown, deliveryCount = 1, maxDeliveries?: number): InboundMessage {
  return maxDeliveries === undefined
    ? { body, deliveryCount }
    : { body, deliveryCount, maxDeliveries };
}

/** A promise and the functions that settle it. */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
