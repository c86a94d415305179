import { createHash, randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import pLimit from 'p-limit';
import type {
  FanOutContext,
  FanOutSource,
  StageDefinition,
  TaskContext,
  TaskResult,
} from '../define.js';
import {
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
  type PackedTask,
  type StageEnvelope,
  type TaskEnvelope,
  type TasksEnvelope,
} from '../envelope.js';
import {
  type ErrorInfo,
  isSwitchyardError,
  MalformedMessageError,
  SerializationError,
  SwitchyardError,
  TaskTimeoutError,
  toErrorInfo,
  ValidationError,
} from '../errors.js';
import { deriveJobId, taskId as makeTaskId, parseTaskId } from '../ids.js';
import { consoleLogger, type Logger } from '../logger.js';
import type {
  ClaimRef,
  JobRecord,
  PackAdmission,
  StageCompletion,
  StageRecord,
  Store,
  TaskClaim,
  TaskOutcome,
  TaskRef,
  TaskRetry,
} from '../store.js';
import type {
  OutgoingMessage,
  QueueKind,
  ReceivedMessage,
  Settlement,
  Transport,
} from '../transport.js';
import { Batcher } from '../util/batcher.js';
import { canonicalJson } from '../util/json.js';
import type { AnyJob, NamedJob, Switchyard } from './api.js';
import {
  type BatchingOptions,
  type BatchingPolicy,
  resolvePolicy,
  sendBatched,
} from './batching.js';
import { backoffDelay, resolveRetry } from './retry.js';
import { type HeldMessage, TaskSlots } from './slots.js';
import type {
  HandleMeta,
  HandleSettlement,
  JobView,
  MetricsReport,
  ReconcileOptions,
  ReconcileResult,
  StageView,
  SubmitOptions,
  SubmitResult,
  SwitchyardOptions,
  WaitForOptions,
  WorkOptions,
} from './types.js';

type JobInfo = Pick<JobRecord, 'id' | 'name' | 'transport' | 'stageCount'>;

const TERMINAL_JOB = new Set(['succeeded', 'failed', 'cancelled']);
const JOB_CACHE_MAX = 10_000;
/** Results per `listResults` page when a stage's fan-out reads the previous stage's results. */
const RESULTS_PAGE = 5000;
/** Stage-message deliveries after which a failing fan-out or finalize fails the job. */
const MAX_FINALIZE_DELIVERIES = 5;

/**
 * Creates a Switchyard over a store and one or more transports.
 *
 * @example
 * ```ts
 * const yard = createSwitchyard({ jobs: [helloWorld], store: memoryStore(), transports: [memoryTransport()] });
 * const { jobId } = await yard.submit('hello_world', { n: 100 });
 * ```
 */
export function createSwitchyard<const Jobs extends readonly NamedJob[]>(
  options: SwitchyardOptions<Jobs>,
): Switchyard<Jobs> {
  return new SwitchyardImpl(options) as unknown as Switchyard<Jobs>;
}

interface PathState {
  name: string;
  transport: Transport;
  policy: BatchingPolicy;
}

interface Delivery {
  body: unknown;
  deliveryCount: number;
  maxDeliveries?: number;
  transport?: string;
  /** The message's hold on its worker loop's task slots (`work()` only). */
  held?: HeldMessage;
}

/** An attempt as the store records it with the outcome or the retry. */
type AttemptInfo = TaskRef & { attempt: number; startedAt: Date };

/** A task message's settlement; a retry notes the attempt that failed. */
type TaskSettlement =
  | Exclude<HandleSettlement, { action: 'retry' }>
  | (Extract<HandleSettlement, { action: 'retry' }> & { attempt?: number });

/** A task settlement without the engine's own notes, as `handle()` returns it. */
function publicSettlement(settlement: TaskSettlement): HandleSettlement {
  if (settlement.action !== 'retry') return settlement;
  const { action, delayMs, reason } = settlement;
  return reason === undefined ? { action, delayMs } : { action, delayMs, reason };
}

class SwitchyardImpl {
  readonly jobs: ReadonlyMap<string, AnyJob>;
  readonly store: Store;
  readonly transportNames: readonly string[];
  private readonly paths = new Map<string, PathState>();
  private readonly defaultTransport: string;
  private readonly logger: Logger;
  private readonly options: SwitchyardOptions<readonly NamedJob[]>;
  /** A job's immutable facts by id: the load in flight, and once loaded its value. */
  private readonly jobCache = new Map<
    string,
    { loading: Promise<JobInfo | undefined>; info?: JobInfo }
  >();
  private readonly instanceId = randomUUID();
  private readonly shutdown = new AbortController();
  private readonly shutdownGroup = new AbortGroup(this.shutdown.signal);
  private readonly workers = new Set<Promise<void>>();
  private initPromise: Promise<void> | undefined;
  private closed = false;

  private readonly claims: Batcher<ClaimRef, TaskClaim>;
  /** Present when the store admits packs as a whole (`Store.admitPacks`). */
  private readonly packAdmissions: Batcher<PackAdmission, boolean> | undefined;
  private readonly completions: Batcher<TaskOutcome, boolean>;
  private readonly retries: Batcher<TaskRetry, undefined>;
  private readonly rechecks = new Map<string, Promise<void>>();
  private reconciling: Promise<ReconcileResult> | undefined;

  constructor(options: SwitchyardOptions<readonly NamedJob[]>) {
    this.options = options;
    this.store = options.store;
    this.logger = options.logger ?? consoleLogger;
    const jobs = new Map<string, AnyJob>();
    for (const job of options.jobs as readonly AnyJob[]) {
      if (jobs.has(job.name))
        throw new ValidationError(`jobs: duplicate job name "${job.name}"`, [
          { path: 'jobs', message: `duplicate job name "${job.name}"` },
        ]);
      jobs.set(job.name, job);
    }
    this.jobs = jobs;
    const transports = Array.isArray(options.transports)
      ? (options.transports as readonly Transport[]).map((t) => [t.name, t] as const)
      : Object.entries(options.transports as Record<string, Transport>);
    if (transports.length === 0)
      throw new ValidationError('transports: at least one transport is required', [
        { path: 'transports', message: 'empty' },
      ]);
    for (const [name, transport] of transports) {
      if (this.paths.has(name))
        throw new ValidationError(`transports: duplicate path name "${name}"`, [
          { path: 'transports', message: `duplicate "${name}"` },
        ]);
      this.paths.set(name, {
        name,
        transport,
        policy: resolvePolicy(transport.limits, this.batchingFor(name)),
      });
    }
    this.transportNames = [...this.paths.keys()];
    this.defaultTransport = options.defaultTransport ?? this.transportNames[0]!;
    if (!this.paths.has(this.defaultTransport)) {
      throw new ValidationError(
        `defaultTransport: "${this.defaultTransport}" is not one of ${this.transportNames.join(', ')}`,
        [{ path: 'defaultTransport', message: 'not a configured transport' }],
      );
    }
    setMaxListeners(0, this.shutdown.signal);
    this.claims = new Batcher((refs) => this.store.claimTasks(refs), 1000, 2);
    const admitPacks = this.store.admitPacks?.bind(this.store);
    this.packAdmissions = admitPacks ? new Batcher(admitPacks, 1000, 2) : undefined;
    // Three barrier batches in flight: each waits for its commit to reach the WAL, and concurrent
    // commits are flushed together; one at a time left the Postgres path's cores partly idle.
    this.completions = new Batcher((outcomes) => this.completeBatch(outcomes), 1000, 3);
    this.retries = new Batcher(async (items) => {
      await this.store.retryTasks(items);
      return items.map(() => undefined);
    }, 1000);
  }

  private batchingFor(path: string): BatchingOptions | undefined {
    const batching = this.options.batching as Record<string, unknown> | undefined;
    if (!batching) return undefined;
    const own = batching[path];
    if (own && typeof own === 'object') return own as BatchingOptions;
    const keys = ['maxMessages', 'maxBytes', 'concurrency', 'chunkSize', 'packTasks'];
    return Object.keys(batching).some((k) => keys.includes(k))
      ? (batching as BatchingOptions)
      : undefined;
  }

  private init(): Promise<void> {
    this.initPromise ??= Promise.resolve(this.store.init?.());
    return this.initPromise;
  }

  // ---------------------------------------------------------------- submit and queries

  async submit(
    jobName: string,
    params: unknown,
    options: SubmitOptions = {},
  ): Promise<SubmitResult> {
    this.assertOpen();
    const def = this.jobs.get(jobName);
    if (!def)
      throw new SwitchyardError(
        'UNKNOWN_JOB',
        `unknown job "${jobName}" (known: ${[...this.jobs.keys()].join(', ') || 'none'})`,
      );
    const transport = options.transport ?? this.defaultTransport;
    if (!this.paths.has(transport)) {
      throw new SwitchyardError(
        'UNKNOWN_TRANSPORT',
        `unknown transport "${transport}" (configured: ${this.transportNames.join(', ')})`,
      );
    }
    if (
      options.idempotencyKey !== undefined &&
      (typeof options.idempotencyKey !== 'string' ||
        options.idempotencyKey.length === 0 ||
        options.idempotencyKey.length > 200)
    ) {
      throw new ValidationError('idempotencyKey must be a string of 1-200 characters', [
        { path: 'idempotencyKey', message: 'must be a string of 1-200 characters' },
      ]);
    }
    const validated = def.params ? await validate(def.params, params, 'params') : params;
    const canonical = canonicalJson(validated, 'params');
    const stored = validated === undefined ? null : JSON.parse(canonical);
    await this.init();
    const id = deriveJobId(def.name, canonical, options.idempotencyKey);
    const { job, created } = await this.store.createJob({
      id,
      name: def.name,
      params: stored,
      transport,
      stageCount: def.stages.length,
      ...(options.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey }),
    });
    // A resubmitted job that never started re-sends its first stage message: cheap, idempotent,
    // and it heals a submit that crashed between the commit and the send.
    if (job.status === 'queued') await this.sendStageMessage(job, 0);
    return { jobId: job.id, created, status: job.status, transport: job.transport };
  }

  async getJob(jobId: string): Promise<JobView | undefined> {
    const job = await this.store.getJob(jobId);
    if (!job) return undefined;
    return toJobView(job, await this.store.getStages(jobId), this.jobs.get(job.name));
  }

  async *results(jobId: string, stage?: string | number): AsyncIterable<TaskResult> {
    const job = await this.store.getJob(jobId);
    if (!job) throw new SwitchyardError('JOB_NOT_FOUND', `job ${jobId} not found`);
    if (stage === undefined) {
      for (let i = 0; i < job.stageCount; i++) yield* this.stageResults(jobId, i);
      return;
    }
    yield* this.stageResults(jobId, this.stageIndex(job, stage));
  }

  private stageIndex(job: Pick<JobRecord, 'name' | 'stageCount'>, stage: string | number): number {
    if (typeof stage === 'number') {
      if (Number.isInteger(stage) && stage >= 0 && stage < job.stageCount) return stage;
    } else {
      const index = this.jobs.get(job.name)?.stages.findIndex((s) => s.name === stage) ?? -1;
      if (index >= 0) return index;
    }
    throw new ValidationError(
      `stage ${JSON.stringify(stage)} is not a stage of job "${job.name}"`,
      [{ path: 'stage', message: 'unknown stage' }],
    );
  }

  private async *stageResults(jobId: string, stage: number): AsyncIterable<TaskResult> {
    if (this.store.listResults) {
      let afterIndex = -1;
      for (;;) {
        const page = await this.store.listResults(jobId, stage, {
          afterIndex,
          limit: RESULTS_PAGE,
        });
        for (const r of page)
          yield {
            stage,
            index: r.index,
            taskId: makeTaskId(jobId, stage, r.index),
            result: r.result,
          };
        if (page.length < RESULTS_PAGE) return;
        afterIndex = page[page.length - 1]!.index;
      }
    }
    let cursor: string | undefined;
    do {
      const page = await this.store.listTasks(jobId, {
        stage,
        status: 'succeeded',
        limit: 1000,
        ...(cursor ? { cursor } : {}),
      });
      for (const t of page.tasks)
        yield { stage: t.stage, index: t.index, taskId: t.id, result: t.result };
      cursor = page.nextCursor;
    } while (cursor);
  }

  async cancel(jobId: string): Promise<boolean> {
    return this.store.cancelJob(jobId);
  }

  async waitFor(jobId: string, options: WaitForOptions = {}): Promise<JobView> {
    const interval = options.pollIntervalMs ?? 200;
    for (;;) {
      if (options.signal?.aborted)
        throw new SwitchyardError('ABORTED', `waitFor(${jobId}) aborted`, {
          cause: options.signal.reason,
        });
      const view = await this.getJob(jobId);
      if (!view) throw new SwitchyardError('JOB_NOT_FOUND', `job ${jobId} not found`);
      options.onProgress?.(view);
      if (TERMINAL_JOB.has(view.status)) return view;
      await sleep(interval, options.signal);
    }
  }

  async metrics(): Promise<MetricsReport> {
    return { paths: await this.store.metrics(), generatedAt: new Date() };
  }

  async ready() {
    const checks: Record<string, { ok: boolean; error?: string }> = {};
    const probe = async (name: string, fn: (() => Promise<void>) | undefined) => {
      try {
        await fn?.();
        checks[name] = { ok: true };
      } catch (err) {
        checks[name] = { ok: false, error: toErrorInfo(err).message };
      }
    };
    await Promise.all([
      probe('store', this.store.ping?.bind(this.store)),
      ...[...this.paths.values()].map((p) =>
        probe(`transport:${p.name}`, p.transport.ping?.bind(p.transport)),
      ),
    ]);
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  }

  // ---------------------------------------------------------------- message processing

  async handle(message: unknown, meta: HandleMeta = {}): Promise<HandleSettlement> {
    this.assertOpen();
    return this.process({
      body: message,
      deliveryCount: meta.deliveryCount ?? 1,
      ...(meta.maxDeliveries === undefined ? {} : { maxDeliveries: meta.maxDeliveries }),
      ...(meta.transport === undefined ? {} : { transport: meta.transport }),
    });
  }

  private async process(
    delivery: Delivery,
    group: AbortGroup = this.shutdownGroup,
  ): Promise<HandleSettlement> {
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(delivery.body);
    } catch (err) {
      const info = toErrorInfo(err);
      this.logger.warn('dead-lettering a message that is not a Switchyard envelope', {
        reason: info.message,
      });
      return { action: 'deadLetter', reason: 'MalformedMessage', description: info.message };
    }
    // Before anything is awaited: the worker must not ask for more while it thinks this is one task.
    if (envelope.kind === 'tasks') delivery.held?.holds(envelope.tasks.length);
    try {
      await this.init();
      switch (envelope.kind) {
        case 'stage':
          return await this.processStage(envelope, delivery);
        case 'task':
          return publicSettlement(await this.processTask(envelope, delivery, group));
        case 'tasks':
          return await this.processPack(envelope, delivery, group);
      }
    } catch (err) {
      // The store or transport failed under us: release the message, it comes back.
      const info = toErrorInfo(err);
      this.logger.error('message processing failed; releasing it for redelivery', {
        jobId: envelope.jobId,
        error: info.message,
      });
      return {
        action: 'retry',
        delayMs: backoffDelay(resolveRetry(this.options.retry), delivery.deliveryCount),
        reason: info.message,
      };
    }
  }

  /**
   * The job's immutable identity (name, path, stage count), cached; concurrent misses share one
   * read. A loaded job is returned as is, not as a promise: a pack's every task asks, and an await
   * costs a turn of the microtask queue even when the value is there.
   */
  private jobInfo(jobId: string): JobInfo | Promise<JobInfo | undefined> {
    const cached = this.jobCache.get(jobId);
    if (cached) return cached.info ?? cached.loading;
    const entry: { loading: Promise<JobInfo | undefined>; info?: JobInfo } = {
      loading: this.store.getJob(jobId).then((job) => {
        if (!job) {
          this.jobCache.delete(jobId);
          return undefined;
        }
        entry.info = {
          id: job.id,
          name: job.name,
          transport: job.transport,
          stageCount: job.stageCount,
        };
        return entry.info;
      }),
    };
    entry.loading.catch(() => this.jobCache.delete(jobId));
    if (this.jobCache.size >= JOB_CACHE_MAX)
      this.jobCache.delete(this.jobCache.keys().next().value!);
    this.jobCache.set(jobId, entry);
    return entry.loading;
  }

  private async processStage(
    envelope: StageEnvelope,
    delivery: Delivery,
  ): Promise<HandleSettlement> {
    const job = await this.store.getJob(envelope.jobId);
    if (!job)
      return {
        action: 'deadLetter',
        reason: 'JobNotFound',
        description: `job ${envelope.jobId} does not exist`,
      };
    if (TERMINAL_JOB.has(job.status)) return { action: 'complete' };
    const def = this.jobs.get(job.name);
    if (!def)
      return {
        action: 'deadLetter',
        reason: 'UnknownJob',
        description: `job "${job.name}" is not defined in this worker`,
      };
    if (envelope.stage >= job.stageCount) return this.finalize(job, def, delivery);

    const stageDef = def.stages[envelope.stage]!;
    const started = await this.store.startStage(job.id, envelope.stage, stageDef.name);
    if (
      started.job.currentStage !== envelope.stage ||
      TERMINAL_JOB.has(started.job.status) ||
      !started.stage
    ) {
      // A stale duplicate (the job moved on) or a message that raced ahead: nothing to do.
      return { action: 'complete' };
    }
    const stage = started.stage;
    if (stage.status === 'complete') {
      await this.onStageComplete(completionOf(stage));
    } else if (stage.status === 'fanning_out') {
      try {
        await this.fanOut(started.job, stageDef, stage.index);
      } catch (err) {
        // A fan-out that cannot succeed (an input JSON cannot carry, or one that keeps throwing)
        // fails the job instead of being redelivered forever; other failures are retried.
        const permanent = isSwitchyardError(err) && err.code === 'NOT_SERIALIZABLE';
        const userFailure =
          err instanceof UserCodeError && delivery.deliveryCount >= MAX_FINALIZE_DELIVERIES;
        // Store and transport failures are never the job's fault: redelivery retries them.
        if (!permanent && !userFailure) throw err;
        const info = toErrorInfo(err instanceof UserCodeError ? err.cause : err);
        await this.store.finishJob(job.id, {
          status: 'failed',
          error: {
            ...info,
            message: `fan-out of stage "${stageDef.name}" failed: ${info.message}`,
          },
        });
        this.jobCache.delete(job.id);
      }
    }
    // A sealed stage was sealed by a worker that had sent every open task's message first, so a
    // redelivered stage message has nothing to add: a task message lost since is the
    // reconciler's (`task-message-lost`). Re-sending here multiplied duplicates under crashes.
    return { action: 'complete' };
  }

  private fanOutContext(job: JobRecord, stage: number): FanOutContext {
    return {
      jobId: job.id,
      stage,
      results: <O>(stageName: string) =>
        this.stageResults(job.id, this.stageIndex(job, stageName)) as AsyncIterable<TaskResult<O>>,
      logger: this.logger,
    };
  }

  /**
   * Inserts the stage's tasks chunk by chunk (skipping existing rows) and sends their messages in
   * batches, then seals the stage with its total. Re-running it after a crash resumes: existing
   * tasks are not re-inserted and terminal ones are not re-sent.
   */
  private async fanOut(job: JobRecord, stageDef: StageDefinition, stage: number): Promise<void> {
    const path = this.pathOf(job.transport);
    const chunks = userChunks(
      () => stageDef.fanOut(job.params, this.fanOutContext(job, stage)),
      path.policy.chunkSize,
    );
    const limit = pLimit(path.policy.concurrency);
    let index = 0;
    let chunk: unknown[] = [];
    let inFlight: Promise<void> = Promise.resolve();
    const batchPrefix = randomUUID().slice(0, 8);
    const flush = async () => {
      if (chunk.length === 0) return;
      const start = index - chunk.length;
      const batchId = `${batchPrefix}-${start}`;
      const tasks = chunk.map((input, i) => ({
        index: start + i,
        input: checkJson(input, `stages[${stage}] (${stageDef.name}) fanOut item ${start + i}`),
        batchId,
      }));
      chunk = [];
      const inserted = await this.store.insertTasks(job.id, stage, tasks);
      let open = tasks;
      const resumed = inserted < tasks.length;
      if (resumed) {
        // A resumed fan-out: only tasks not terminal yet need a message.
        const page = await this.store.listTasks(job.id, {
          stage,
          afterIndex: start - 1,
          limit: tasks.length,
        });
        const openIndexes = new Set(
          page.tasks
            .filter((t) => t.status === 'pending' || t.status === 'running')
            .map((t) => t.index),
        );
        open = tasks.filter((t) => openIndexes.has(t.index));
      }
      const messages = this.taskMessages(path, job.id, stage, open, resumed);
      // Overlap this chunk's sends with the next chunk's insert, but never more than one behind.
      await inFlight;
      inFlight = sendBatched(path.transport, 'task', messages, path.policy, limit);
      // Awaited later (next chunk or the end); until then a failure must not count as unhandled.
      inFlight.catch(() => {});
    };
    for await (const inputs of chunks) {
      for (const input of inputs) {
        chunk.push(input);
        index++;
        if (chunk.length >= path.policy.chunkSize) {
          await flush();
          if ((index / path.policy.chunkSize) % 10 === 0 && (await this.isInactive(job.id))) return;
        }
      }
    }
    await flush();
    await inFlight;
    const completion = await this.store.sealStage(job.id, stage, index);
    if (completion) await this.onStageComplete(completion);
  }

  private async isInactive(jobId: string): Promise<boolean> {
    const job = await this.store.getJob(jobId);
    return !job || TERMINAL_JOB.has(job.status);
  }

  /**
   * A fan-out chunk's messages: one per task, or packs of up to `packTasks` within the size limit
   * (marked `resumed` when a resumed fan-out sends them: their tasks may have run already).
   */
  private taskMessages(
    path: PathState,
    jobId: string,
    stage: number,
    tasks: readonly { index: number; input: unknown }[],
    resumed: boolean,
  ): OutgoingMessage[] {
    const packSize = path.policy.packTasks;
    if (packSize <= 1)
      return tasks.map((t) => this.taskMessage(path, jobId, stage, t.index, t.input));
    const limit = path.transport.limits.maxMessageBytes;
    // Each task is serialised once: the pack's body is the empty envelope with the entries
    // spliced into its `tasks` list, so the size counted is the size sent.
    const empty = encodeEnvelope({
      v: 1,
      kind: 'tasks',
      jobId,
      stage,
      ...(resumed ? { resumed: true } : {}),
      tasks: [], // last: the entries are spliced into it
    });
    const head = empty.slice(0, -2); // up to and including the list's `[`
    const overhead = Buffer.byteLength(empty);
    const messages: OutgoingMessage[] = [];
    let indexes: number[] = [];
    let entries: string[] = [];
    let bytes = overhead;
    const flush = () => {
      if (entries.length === 0) return;
      messages.push({
        body: `${head}${entries.join(',')}]}`,
        // Names the exact set: a resumed fan-out packs differently, and a transport that drops
        // duplicate ids (Service Bus) must not take its packs for the earlier ones.
        messageId: `${makeTaskId(jobId, stage, indexes[0]!)}+${indexes.length}-${createHash('sha1')
          .update(indexes.join(','))
          .digest('hex')
          .slice(0, 12)}`,
      });
      indexes = [];
      entries = [];
      bytes = overhead;
    };
    for (const t of tasks) {
      let entry = JSON.stringify({ index: t.index, input: t.input } satisfies PackedTask);
      let size = Buffer.byteLength(entry) + 1; // + its comma
      // Claim check per task: an input too large to share a message stays in the task row.
      if (overhead + size > limit) {
        entry = JSON.stringify({ index: t.index } satisfies PackedTask);
        size = Buffer.byteLength(entry) + 1;
      }
      if (entries.length >= packSize || bytes + size > limit) flush();
      indexes.push(t.index);
      entries.push(entry);
      bytes += size;
    }
    flush();
    return messages;
  }

  /**
   * One task's message. `attempts` (a re-drive's) marks it as not the fan-out's own message, so
   * its first delivery is claimed rather than admitted.
   */
  private taskMessage(
    path: PathState,
    jobId: string,
    stage: number,
    index: number,
    input: unknown,
    attempts?: number,
  ): OutgoingMessage {
    const taskId = makeTaskId(jobId, stage, index);
    const base: TaskEnvelope = { v: 1, kind: 'task', jobId, stage, taskId };
    if (attempts !== undefined) base.attempts = attempts;
    const inline = encodeEnvelope({ ...base, input });
    // Claim check: an input too large for the transport stays in the task row only.
    const fits =
      inline.length * 3 <= path.transport.limits.maxMessageBytes ||
      Buffer.byteLength(inline) <= path.transport.limits.maxMessageBytes;
    return {
      body: fits ? inline : encodeEnvelope({ ...base, ref: taskId }),
      messageId: taskId,
    };
  }

  private async finalize(
    job: JobRecord,
    def: AnyJob,
    delivery: Delivery,
  ): Promise<HandleSettlement> {
    const stages = await this.store.getStages(job.id);
    const last = stages[job.stageCount - 1];
    if (job.currentStage !== job.stageCount - 1 || last?.status !== 'complete')
      return { action: 'complete' };
    try {
      const result = def.finalize
        ? await def.finalize({
            jobId: job.id,
            params: job.params,
            stages: stages.map((s) => ({
              name: s.name,
              total: s.total ?? 0,
              succeeded: s.succeeded,
              failed: s.failed,
            })),
            results: <O>(stageName: string) =>
              this.stageResults(job.id, this.stageIndex(job, stageName)) as AsyncIterable<
                TaskResult<O>
              >,
            logger: this.logger,
          })
        : undefined;
      const stored =
        result === undefined ? undefined : JSON.parse(canonicalJson(result, 'finalize result'));
      await this.store.finishJob(job.id, {
        status: 'succeeded',
        ...(stored === undefined ? {} : { result: stored }),
      });
      this.jobCache.delete(job.id);
      return { action: 'complete' };
    } catch (err) {
      const info = toErrorInfo(err);
      if (delivery.deliveryCount >= MAX_FINALIZE_DELIVERIES || isSwitchyardError(err)) {
        await this.store.finishJob(job.id, {
          status: 'failed',
          error: { ...info, message: `finalize failed: ${info.message}` },
        });
        return { action: 'complete' };
      }
      return {
        action: 'retry',
        delayMs: 1000 * 2 ** (delivery.deliveryCount - 1),
        reason: info.message,
      };
    }
  }

  /**
   * What to claim for one task message. The first delivery of a fan-out's own message is admitted
   * (nothing written); any other delivery is claimed, and counts attempts the earlier deliveries
   * may not have recorded. (A plain fixed-shape object: this runs once per task.)
   */
  private claimRef(envelope: TaskEnvelope, delivery: Delivery): ClaimRef {
    return {
      jobId: envelope.jobId,
      stage: envelope.stage,
      taskId: envelope.taskId,
      minAttempt: (envelope.attempts ?? 0) + delivery.deliveryCount,
      admitOnly: delivery.deliveryCount === 1 && envelope.attempts === undefined,
      withInput: !('input' in envelope),
    };
  }

  /** Runs one task message; a settlement other than `complete` notes the attempt it ended. */
  private async processTask(
    envelope: TaskEnvelope,
    delivery: Delivery,
    group: AbortGroup,
    /** The task's index, when the caller knows it (a pack names its tasks by index). */
    index?: number,
    /** The task's claim, when the caller made it (a pack claims its tasks together). */
    claimed?: TaskClaim,
    /** Admitted with its pack, unchecked: an outcome that does not apply asks why afterwards. */
    packAdmitted = false,
  ): Promise<TaskSettlement> {
    // Split out of a pack to be dead-lettered: the failure is recorded already.
    if (envelope.deadLetter) {
      const { reason, description = '' } = envelope.deadLetter;
      return { action: 'deadLetter', reason, description };
    }
    const inline = 'input' in envelope;
    const claim = claimed ?? (await this.claims.add(this.claimRef(envelope, delivery)));
    if (claim.outcome !== 'run') return this.notRun(envelope, claim.outcome);
    const unapplied = packAdmitted ? () => this.whyUnapplied(envelope, delivery) : undefined;
    const attempt: AttemptInfo = {
      jobId: envelope.jobId,
      stage: envelope.stage,
      taskId: envelope.taskId,
      attempt: claim.attempt ?? 1,
      startedAt: new Date(),
    };
    const known = this.jobInfo(envelope.jobId);
    const job = known instanceof Promise ? await known : known;
    const taskDef = job ? this.jobs.get(job.name)?.stages[envelope.stage]?.task : undefined;
    if (!job || !taskDef) {
      return this.failTask(
        attempt,
        {
          name: 'SwitchyardError',
          code: 'UNKNOWN_JOB',
          message: `no task definition for stage ${envelope.stage} of job "${job?.name}"`,
        },
        'UnknownTask',
        false,
        unapplied,
      );
    }
    const retry = resolveRetry(this.options.retry, taskDef.retry);
    let input: unknown = inline ? envelope.input : claim.input;
    if (taskDef.input) {
      try {
        const checked = validate(taskDef.input, input, 'input');
        input = checked instanceof Promise ? await checked : checked;
      } catch (err) {
        return this.failTask(attempt, toErrorInfo(err), 'InvalidInput', false, unapplied);
      }
    }
    const held = delivery.held;
    const turn = held?.handlerStarting();
    if (held && turn) {
      await turn;
      // Stopped while waiting for a slot: release the task unstarted (its attempt not counted).
      if (group.signal.aborted) {
        held.handlerEnded();
        const reason = 'worker shutting down';
        return { action: 'retry', delayMs: 0, reason, attempt: attempt.attempt - 1 };
      }
    }
    const outcome = await runHandler(taskDef.handler.bind(taskDef), input, {
      jobId: envelope.jobId,
      taskId: envelope.taskId,
      stage: envelope.stage,
      index: index ?? parseTaskId(envelope.taskId)?.index ?? Number.NaN,
      attempt: attempt.attempt,
      logger: this.logger,
      timeoutMs: taskDef.timeoutMs,
      shutdown: group,
    });
    held?.handlerEnded();
    if (outcome.ok) {
      const applied = await this.completions.add({
        jobId: attempt.jobId,
        stage: attempt.stage,
        taskId: attempt.taskId,
        attempt: attempt.attempt,
        startedAt: attempt.startedAt,
        status: 'succeeded',
        result: outcome.result,
      });
      return applied || !unapplied ? { action: 'complete' } : unapplied();
    }
    if (outcome.shutdown)
      return {
        action: 'retry',
        delayMs: 0,
        reason: 'worker shutting down',
        attempt: attempt.attempt,
      };
    const lastDelivery =
      delivery.maxDeliveries !== undefined && delivery.deliveryCount >= delivery.maxDeliveries;
    if (attempt.attempt >= retry.maxAttempts || outcome.permanent || lastDelivery) {
      const reason = outcome.permanent
        ? 'NotSerializable'
        : lastDelivery && attempt.attempt < retry.maxAttempts
          ? 'MaxDeliveriesExceeded'
          : 'MaxAttemptsExceeded';
      return this.failTask(attempt, outcome.error, reason, outcome.timedOut, unapplied);
    }
    await this.retries.add({
      ...attempt,
      error: outcome.error,
      ...(outcome.timedOut ? { timedOut: true } : {}),
    });
    return {
      action: 'retry',
      delayMs: backoffDelay(retry, attempt.attempt),
      reason: outcome.error.message,
      attempt: attempt.attempt,
    };
  }

  /**
   * Runs a pack's tasks concurrently, each exactly as if it had come alone. The pack is settled
   * once all are recorded; a task that must be retried or dead-lettered is split out into a
   * message of its own (a retry keeps its backoff as the message's delay and counts the attempts
   * so far; a dead-letter is noted in the envelope and settled without running again).
   */
  private async processPack(
    envelope: TasksEnvelope,
    delivery: Delivery,
    group: AbortGroup,
  ): Promise<HandleSettlement> {
    const job = await this.jobInfo(envelope.jobId);
    if (!job)
      return {
        action: 'deadLetter',
        reason: 'JobNotFound',
        description: `job ${envelope.jobId} does not exist`,
      };
    const { jobId, stage } = envelope;
    const single = (t: PackedTask): TaskEnvelope => {
      const taskId = makeTaskId(jobId, stage, t.index);
      return 'input' in t
        ? { v: 1, kind: 'task', jobId, stage, taskId, input: t.input }
        : { v: 1, kind: 'task', jobId, stage, taskId, ref: taskId };
    };
    const singles = envelope.tasks.map(single);
    // The first delivery of a fan-out's own pack is admitted with one check for the whole pack:
    // its tasks were inserted just before it was sent. A resumed fan-out's pack, a redelivery and
    // a task whose input stayed in its row are claimed task by task.
    const asPack =
      this.packAdmissions !== undefined &&
      delivery.deliveryCount === 1 &&
      envelope.resumed !== true &&
      envelope.tasks.every((t) => 'input' in t);
    let claims: TaskClaim[];
    if (asPack) {
      if (!(await this.packAdmissions.add({ jobId, stage, tasks: singles.length }))) {
        // The job is not running or the stage is complete (this pack is a late duplicate): make
        // sure a completed stage's advance was not lost, as a terminal task's duplicate does.
        await this.recheckStage(jobId, stage);
        return { action: 'complete' };
      }
      claims = singles.map((t) => ({ taskId: t.taskId, outcome: 'run', attempt: 1 }));
    } else {
      // One claim batch entry for the pack, not a promise per task.
      claims = await this.claims.addMany(singles.map((t) => this.claimRef(t, delivery)));
    }
    // allSettled: a store failure in one task must not settle the pack while others still run.
    const outcomes = await Promise.allSettled(
      singles.map((t, i) =>
        this.processTask(t, delivery, group, envelope.tasks[i]!.index, claims[i], asPack),
      ),
    );
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
    const split: OutgoingMessage[] = [];
    outcomes.forEach((o, i) => {
      const settlement = (o as PromiseFulfilledResult<TaskSettlement>).value;
      if (settlement.action === 'complete') return;
      const task = singles[i]!;
      const body: TaskEnvelope =
        settlement.action === 'retry'
          ? { ...task, attempts: settlement.attempt ?? delivery.deliveryCount }
          : {
              ...task,
              deadLetter: { reason: settlement.reason, description: settlement.description },
            };
      split.push({
        body: encodeEnvelope(body),
        messageId: `${body.taskId}#${delivery.deliveryCount}`,
        ...(settlement.action === 'retry' && settlement.delayMs > 0
          ? { delayMs: settlement.delayMs }
          : {}),
      });
    });
    if (split.length > 0) {
      const path = this.pathOf(job.transport);
      await sendBatched(path.transport, 'task', split, path.policy);
    }
    return { action: 'complete' };
  }

  /**
   * Why a claimed task must not run, as its message's settlement: dead-lettered when it (or its
   * job) does not exist; otherwise acknowledged.
   */
  private async notRun(
    envelope: TaskEnvelope,
    outcome: Exclude<TaskClaim['outcome'], 'run'>,
  ): Promise<TaskSettlement> {
    switch (outcome) {
      case 'missing': {
        const job = await this.store.getJob(envelope.jobId);
        return job
          ? {
              action: 'deadLetter',
              reason: 'TaskNotFound',
              description: `task ${envelope.taskId} does not exist in job ${envelope.jobId}`,
            }
          : {
              action: 'deadLetter',
              reason: 'JobNotFound',
              description: `job ${envelope.jobId} does not exist`,
            };
      }
      case 'terminal':
        // A duplicate or a redelivery after a crash: the result is recorded already. Make sure the
        // stage's advance was not lost with the crash (cheap and idempotent).
        await this.recheckStage(envelope.jobId, envelope.stage);
        return { action: 'complete' };
      case 'job-inactive':
        return { action: 'complete' };
    }
  }

  /**
   * A pack-admitted task ran but its outcome did not apply: it was finished already (a
   * duplicate) or never existed (a foreign pack). The check a claim would have made, made now.
   */
  private async whyUnapplied(envelope: TaskEnvelope, delivery: Delivery): Promise<TaskSettlement> {
    const claim = await this.claims.add(this.claimRef(envelope, delivery));
    return claim.outcome === 'run' ? { action: 'complete' } : this.notRun(envelope, claim.outcome);
  }

  /** Poisons a task: records the failure (the barrier counts it) and dead-letters its message. */
  private async failTask(
    attempt: AttemptInfo,
    error: ErrorInfo,
    reason: string,
    timedOut = false,
    /** For a pack-admitted task: the settlement when the failure did not apply. */
    unapplied?: () => Promise<TaskSettlement>,
  ): Promise<HandleSettlement> {
    const applied = await this.completions.add({
      ...attempt,
      status: 'failed',
      error,
      ...(timedOut ? { timedOut } : {}),
    });
    if (!applied && unapplied) return unapplied();
    return {
      action: 'deadLetter',
      reason,
      description:
        `task ${attempt.taskId} failed after ${attempt.attempt} attempt(s): ${error.message}`.slice(
          0,
          1000,
        ),
    };
  }

  /** The batched fan-in barrier; stage completions it reports are acted on before any ack. */
  private async completeBatch(outcomes: TaskOutcome[]): Promise<boolean[]> {
    const { applied, completedStages } = await this.store.completeTasks(outcomes);
    for (const completion of completedStages) await this.onStageComplete(completion);
    const set = new Set(applied);
    return outcomes.map((o) => set.has(o.taskId));
  }

  /** A stage completed: fail the job if it had more failures than it tolerates, else advance. */
  private async onStageComplete(c: StageCompletion): Promise<void> {
    const job = await this.store.getJob(c.jobId);
    if (!job || TERMINAL_JOB.has(job.status) || job.currentStage !== c.stage) return;
    const stageDef = this.jobs.get(job.name)?.stages[c.stage];
    const tolerated = tolerance(stageDef?.tolerateFailures, c.total);
    if (c.failed > tolerated) {
      const failed = await this.store.listTasks(c.jobId, {
        stage: c.stage,
        status: 'failed',
        limit: 10,
      });
      const ids = failed.tasks.map((t) => t.id);
      const more = c.failed > ids.length ? ` and ${c.failed - ids.length} more` : '';
      const first = failed.tasks[0]?.error?.message;
      await this.store.finishJob(c.jobId, {
        status: 'failed',
        error: {
          name: 'JobFailedError',
          code: 'JOB_FAILED',
          message: `stage "${stageDef?.name ?? c.stage}" failed: ${c.failed} of ${c.total} task(s) failed (tolerated ${tolerated}): ${ids.join(', ')}${more}${first ? ` — first error: ${first}` : ''}`,
          details: { stage: c.stage, failed: c.failed, total: c.total, failedTasks: ids },
        },
      });
      this.jobCache.delete(c.jobId);
      return;
    }
    await this.sendStageMessage(job, c.stage + 1);
  }

  private recheckStage(jobId: string, stage: number): Promise<void> {
    const key = `${jobId}.${stage}`;
    let pending = this.rechecks.get(key);
    if (!pending) {
      pending = (async () => {
        const job = await this.store.getJob(jobId);
        if (!job || TERMINAL_JOB.has(job.status) || job.currentStage !== stage) return;
        const s = (await this.store.getStages(jobId))[stage];
        if (s?.status === 'complete') await this.onStageComplete(completionOf(s));
      })().finally(() => this.rechecks.delete(key));
      this.rechecks.set(key, pending);
    }
    return pending;
  }

  private async sendStageMessage(
    job: Pick<JobRecord, 'id' | 'transport'>,
    stage: number,
  ): Promise<void> {
    const path = this.pathOf(job.transport);
    await path.transport.send('stage', [
      {
        body: encodeEnvelope({ v: 1, kind: 'stage', jobId: job.id, stage }),
        messageId: `${job.id}.stage.${stage}`,
      },
    ]);
  }

  private pathOf(name: string): PathState {
    const path = this.paths.get(name);
    if (!path)
      throw new SwitchyardError(
        'UNKNOWN_TRANSPORT',
        `job uses transport "${name}", which this worker does not configure`,
      );
    return path;
  }

  // ---------------------------------------------------------------- reconciler

  reconcile(options: Omit<ReconcileOptions, 'intervalMs'> = {}): Promise<ReconcileResult> {
    // One pass at a time per instance (a call during a pass joins it): the lease admits its owner
    // again, so a pass outliving the interval (slow sends) would overlap the next and both would
    // re-send the same tasks.
    this.reconciling ??= this.reconcilePass(options).finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  private async reconcilePass(
    options: Omit<ReconcileOptions, 'intervalMs'>,
  ): Promise<ReconcileResult> {
    await this.init();
    const olderThanMs = options.olderThanMs ?? this.options.reconcile?.olderThanMs ?? 300_000;
    const limit = options.limit ?? this.options.reconcile?.limit ?? 1000;
    if (
      !(await this.store.acquireLease('reconciler', this.instanceId, Math.max(30_000, olderThanMs)))
    )
      return { ran: false, redriven: {} };
    const redriven: Record<string, number> = {};
    const count = async (transport: string, reason: string, n: number) => {
      redriven[reason] = (redriven[reason] ?? 0) + n;
      await this.store.incrementCounter(transport, reason, n);
    };
    for (const item of await this.store.findStuck({ olderThanMs, limit })) {
      if (!this.paths.has(item.transport)) continue;
      try {
        switch (item.kind) {
          case 'job-not-started':
            await this.sendStageMessage({ id: item.jobId, transport: item.transport }, 0);
            break;
          case 'fanout-incomplete':
            await this.sendStageMessage({ id: item.jobId, transport: item.transport }, item.stage);
            break;
          case 'stage-not-advanced':
          case 'finalize-not-done': {
            const job = await this.store.getJob(item.jobId);
            if (!job) continue;
            const s = (await this.store.getStages(item.jobId))[job.currentStage];
            if (s?.status !== 'complete') continue;
            await this.onStageComplete(completionOf(s));
            break;
          }
          case 'task-message-lost': {
            const path = this.pathOf(item.transport);
            const tasks = (
              await Promise.all(item.taskIds.map((id) => this.store.getTask(id)))
            ).filter((t) => t !== undefined);
            await sendBatched(
              path.transport,
              'task',
              tasks.map((t) =>
                this.taskMessage(path, t.jobId, t.stage, t.index, t.input, t.attempts),
              ),
              path.policy,
            );
            await this.store.touchTasks?.(tasks.map((t) => t.id));
            await count(item.transport, item.kind, tasks.length);
            continue;
          }
        }
        await count(item.transport, item.kind, 1);
      } catch (err) {
        this.logger.error('reconciler could not re-drive', {
          kind: item.kind,
          jobId: item.jobId,
          error: toErrorInfo(err).message,
        });
      }
    }
    return { ran: true, redriven };
  }

  // ---------------------------------------------------------------- long-running workers

  async work(options: WorkOptions = {}): Promise<void> {
    this.assertOpen();
    await this.init();
    const stop = anySignal([options.signal, this.shutdown.signal]);
    const group = new AbortGroup(stop);
    const concurrency = Math.max(1, options.concurrency ?? 64);
    const names = options.transports ?? this.transportNames;
    const loops: Promise<void>[] = [];
    for (const name of names) {
      const path = this.pathOf(name);
      loops.push(this.receiveLoop(path, 'stage', 2, 1, 1, stop, group, options));
      loops.push(
        this.receiveLoop(
          path,
          'task',
          concurrency,
          path.policy.packTasks,
          options.receivers ?? 2,
          stop,
          group,
          options,
        ),
      );
    }
    const reconcileEvery = this.options.reconcile?.intervalMs ?? 60_000;
    const timer =
      reconcileEvery > 0
        ? setInterval(() => {
            this.reconcile().catch((err: unknown) =>
              this.logger.error('reconciler pass failed', { error: toErrorInfo(err).message }),
            );
          }, reconcileEvery)
        : undefined;
    timer?.unref();
    const all = Promise.all(loops).then(() => undefined);
    this.workers.add(all);
    try {
      await all;
    } finally {
      if (timer) clearInterval(timer);
      this.workers.delete(all);
    }
  }

  /**
   * Receives and processes one queue's messages until stopped, with at most `capacity` tasks'
   * handlers running at once (see {@link TaskSlots}; a stage message counts as one task).
   */
  private async receiveLoop(
    path: PathState,
    queue: QueueKind,
    capacity: number,
    /** Tasks per message to expect at first: the pack size. */
    tasksPerMessage: number,
    receivers: number,
    stop: AbortSignal,
    group: AbortGroup,
    options: WorkOptions,
  ): Promise<void> {
    const transport = path.transport;
    const visibilityTimeoutMs = options.visibilityTimeoutMs ?? 60_000;
    const waitMs = options.waitMs ?? 1000;
    const inFlight = new Map<ReceivedMessage, number>();
    const settler = new Batcher<Settlement, undefined>(
      async (items) => {
        try {
          await transport.settle(items);
        } catch (err) {
          this.logger.error('settling messages failed; they will be redelivered', {
            transport: path.name,
            error: toErrorInfo(err).message,
          });
        }
        return items.map(() => undefined);
      },
      500,
      2,
    );
    // Long tasks keep their lock: extend every message in flight for more than a third of it.
    // At most one extension per message is in flight: when the backend slows down, extensions
    // fired on every tick would pile up (thousands of open requests per worker were seen on a
    // loaded Storage emulator) and slow it further.
    const extending = new Set<ReceivedMessage>();
    const renewer = transport.extendLock
      ? setInterval(
          () => {
            const now = Date.now();
            for (const [message, since] of inFlight) {
              if (now - since > visibilityTimeoutMs / 3 && !extending.has(message)) {
                inFlight.set(message, now);
                extending.add(message);
                transport.extendLock!(message, visibilityTimeoutMs)
                  .catch(() => {})
                  .finally(() => extending.delete(message));
              }
            }
          },
          Math.max(50, visibilityTimeoutMs / 3),
        )
      : undefined;
    renewer?.unref();
    // Several pullers keep a receive call in flight while the previous batch is being processed:
    // one sequential receive loop capped the Postgres path at one round trip per batch.
    let reserved = 0; // tasks the receives in flight asked for
    let waiters: (() => void)[] = [];
    const freed = () => {
      if (waiters.length === 0) return;
      const wake = waiters;
      waiters = [];
      for (const w of wake) w();
    };
    const untilFreed = () => new Promise<void>((resolve) => waiters.push(resolve));
    const slots = new TaskSlots(capacity, tasksPerMessage, freed);
    const pull = async () => {
      let idleBackoff = 0;
      while (!stop.aborted) {
        // Each puller asks for its share, so all of them keep a receive in flight.
        const share = Math.max(1, Math.ceil(slots.messages(capacity) / receivers));
        const want = Math.min(slots.wanted(reserved), share, transport.limits.maxReceiveMessages);
        if (want <= 0) {
          await untilFreed();
          continue;
        }
        const reserving = slots.reserve(want);
        reserved += reserving;
        let messages: ReceivedMessage[];
        try {
          messages = await transport.receive(queue, {
            maxMessages: want,
            visibilityTimeoutMs,
            waitMs,
            abortSignal: stop,
          });
          idleBackoff = 0;
        } catch (err) {
          if (stop.aborted) break;
          idleBackoff = Math.min(10_000, idleBackoff ? idleBackoff * 2 : 250);
          this.logger.error('receive failed; backing off', {
            transport: path.name,
            queue,
            error: toErrorInfo(err).message,
            backoffMs: idleBackoff,
          });
          await sleep(idleBackoff, stop).catch(() => {});
          continue;
        } finally {
          reserved -= reserving;
          freed();
        }
        for (const message of messages) {
          inFlight.set(message, Date.now());
          const held = slots.received();
          this.process(
            {
              body: message.body,
              deliveryCount: message.deliveryCount,
              transport: path.name,
              held,
            },
            group,
          )
            .then((s) => settler.add(toSettlement(message, s)))
            .catch((err: unknown) =>
              this.logger.error('unexpected processing failure', {
                error: toErrorInfo(err).message,
              }),
            )
            .finally(() => {
              inFlight.delete(message);
              held.ended();
            });
        }
      }
    };
    // A puller waiting for capacity must see the stop too.
    stop.addEventListener('abort', freed, { once: true });
    try {
      await Promise.all(Array.from({ length: Math.max(1, receivers) }, pull));
      // Drain: let in-flight messages finish (their handlers saw the abort) and settle.
      while (inFlight.size > 0) await untilFreed();
    } finally {
      if (renewer) clearInterval(renewer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.shutdown.abort(new SwitchyardError('CLOSED', 'switchyard closed'));
    await Promise.all([...this.workers]);
    this.closed = true;
    const closing = [
      this.store.close(),
      ...[...new Set([...this.paths.values()].map((p) => p.transport))].map((t) => t.close()),
    ];
    await Promise.all(closing);
  }

  private assertOpen(): void {
    if (this.closed) throw new SwitchyardError('CLOSED', 'switchyard is closed');
  }
}

// ------------------------------------------------------------------ helpers

/** An error thrown by user code (a `fanOut`), as opposed to the store or a transport failing. */
class UserCodeError extends Error {
  constructor(override readonly cause: unknown) {
    super(toErrorInfo(cause).message);
  }
}

/**
 * Iterates a stage's `fanOut` result (array, iterable or async iterable) in chunks of up to
 * `size` items, marking what the user's code throws — calling it or pulling an item — as a
 * {@link UserCodeError}. A synchronous source is pulled without awaiting each item: a turn of the
 * generator per item cost more than the rest of the fan-out's work on it.
 */
async function* userChunks(
  fanOut: () => FanOutSource<unknown> | Promise<FanOutSource<unknown>>,
  size: number,
): AsyncGenerator<unknown[]> {
  let iterator: Iterator<unknown> | AsyncIterator<unknown>;
  let sync: boolean;
  try {
    const source = await fanOut();
    sync = !(Symbol.asyncIterator in source);
    iterator = sync
      ? (source as Iterable<unknown>)[Symbol.iterator]()
      : (source as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  } catch (err) {
    throw new UserCodeError(err);
  }
  for (;;) {
    const chunk: unknown[] = [];
    while (chunk.length < size) {
      let next: IteratorResult<unknown>;
      try {
        next = sync ? (iterator as Iterator<unknown>).next() : await iterator.next();
      } catch (err) {
        throw new UserCodeError(err);
      }
      if (next.done) {
        if (chunk.length > 0) yield chunk;
        return;
      }
      chunk.push(next.value);
    }
    yield chunk;
  }
}

/** The completion a complete stage's record describes (to act on it again, idempotently). */
function completionOf(stage: StageRecord): StageCompletion {
  return {
    jobId: stage.jobId,
    stage: stage.index,
    succeeded: stage.succeeded,
    failed: stage.failed,
    total: stage.total ?? 0,
  };
}

function toSettlement(message: ReceivedMessage, s: HandleSettlement): Settlement {
  switch (s.action) {
    case 'complete':
      return { message, action: 'complete' };
    case 'retry':
      return { message, action: 'retry', delayMs: s.delayMs };
    case 'deadLetter':
      return { message, action: 'deadLetter', reason: s.reason, description: s.description };
  }
}

function tolerance(t: StageDefinition['tolerateFailures'], total: number): number {
  if (t === undefined) return 0;
  if (typeof t === 'number') return Math.max(0, t);
  return Math.floor(Math.max(0, Math.min(1, t.ratio)) * total);
}

/** Returns `value` as JSON will carry it: unchanged when it is plain JSON already (the common case). */
function checkJson(value: unknown, field: string): unknown {
  if (isPlainJson(value, 0)) return value;
  return JSON.parse(canonicalJson(value, field) ?? 'null');
}

/** True for values JSON round-trips unchanged; false sends the value through the full normaliser. */
function isPlainJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth > 64) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!isPlainJson(item, depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in value) {
    if (
      !Object.hasOwn(value, key) ||
      !isPlainJson((value as Record<string, unknown>)[key], depth + 1)
    )
      return false;
  }
  return true;
}

/**
 * Validates `value` against a Standard Schema. Synchronous when the schema is (zod, valibot and
 * arktype are, for schemas without async refinements): this runs once per task, and awaiting a
 * value that is already there still costs a promise and a turn of the microtask queue.
 */
function validate<T>(
  schema: StandardSchemaV1<unknown, T>,
  value: unknown,
  field: string,
): T | Promise<T> {
  let result: StandardSchemaV1.Result<T> | Promise<StandardSchemaV1.Result<T>>;
  try {
    result = schema['~standard'].validate(value);
  } catch (cause) {
    throw couldNotValidate(field, cause);
  }
  if (result instanceof Promise)
    return result.then(
      (r) => validationResult(r, field),
      (cause: unknown) => {
        throw couldNotValidate(field, cause);
      },
    );
  return validationResult(result, field);
}

/** A schema library that throws (a stack overflow on hostile nesting, a bug) is still bad input. */
function couldNotValidate(field: string, cause: unknown): ValidationError {
  return new ValidationError(
    `invalid ${field}: the schema could not validate it (${toErrorInfo(cause).message})`,
    [{ path: field, message: 'could not be validated' }],
    { cause },
  );
}

function validationResult<T>(result: StandardSchemaV1.Result<T>, field: string): T {
  if (!result.issues) return result.value;
  const issues = result.issues.map((issue) => {
    const path = (issue.path ?? []).map((p) =>
      String(typeof p === 'object' && p !== null ? p.key : p),
    );
    return { path: [field, ...path].join('.'), message: issue.message };
  });
  throw new ValidationError(
    `invalid ${field}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    issues,
  );
}

interface HandlerRun {
  jobId: string;
  taskId: string;
  stage: number;
  index: number;
  attempt: number;
  logger: Logger;
  timeoutMs: number | undefined;
  shutdown: AbortGroup;
}

type HandlerOutcome =
  | { ok: true; result: unknown }
  | { ok: false; error: ErrorInfo; timedOut: boolean; shutdown: boolean; permanent: boolean };

async function runHandler(
  handler: (input: unknown, ctx: TaskContext) => unknown,
  input: unknown,
  run: HandlerRun,
): Promise<HandlerOutcome> {
  const ctx = new HandlerContext(run);
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  try {
    let result: unknown;
    if (run.timeoutMs === undefined) {
      result = await handler(input, ctx);
    } else {
      result = await Promise.race([
        Promise.resolve().then(() => handler(input, ctx)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            timedOut = true;
            const err = new TaskTimeoutError(run.taskId, run.timeoutMs!);
            HandlerContext.abort(ctx, err);
            reject(err);
          }, run.timeoutMs);
        }),
      ]);
    }
    try {
      return {
        ok: true,
        result: checkJson(result === undefined ? null : result, `result of task ${run.taskId}`),
      };
    } catch (err) {
      return {
        ok: false,
        error: toErrorInfo(err),
        timedOut: false,
        shutdown: false,
        permanent: err instanceof SerializationError,
      };
    }
  } catch (err) {
    return {
      ok: false,
      error: toErrorInfo(err),
      timedOut,
      shutdown: !timedOut && run.shutdown.signal.aborted,
      permanent: err instanceof MalformedMessageError,
    };
  } finally {
    if (timer) clearTimeout(timer);
    HandlerContext.release(ctx);
  }
}

/**
 * A handler's `ctx`. Its AbortController, and its place in the worker's shutdown group, are made
 * only when the handler reads `signal`: most handlers never do, and a controller, a closure and a
 * group entry per task were a large share of the engine's allocations. The abort state lives in
 * private fields, so a handler sees nothing but {@link TaskContext}.
 */
class HandlerContext implements TaskContext {
  readonly jobId: string;
  readonly taskId: string;
  readonly stage: number;
  readonly index: number;
  readonly attempt: number;
  readonly logger: Logger;
  readonly #group: AbortGroup;
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  #joined = false;

  constructor(run: HandlerRun) {
    this.jobId = run.jobId;
    this.taskId = run.taskId;
    this.stage = run.stage;
    this.index = run.index;
    this.attempt = run.attempt;
    this.logger = run.logger;
    this.#group = run.shutdown;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      const group = this.#group;
      if (!this.#aborted && group.signal.aborted) HandlerContext.abort(this, group.signal.reason);
      if (this.#aborted) this.#controller.abort(this.#reason);
      else {
        group.add(this);
        this.#joined = true;
      }
    }
    return this.#controller.signal;
  }

  /** Aborts the attempt (a timeout, the worker shutting down); the first reason wins. */
  static abort(ctx: HandlerContext, reason: unknown): void {
    if (ctx.#aborted) return;
    ctx.#aborted = true;
    ctx.#reason = reason;
    ctx.#controller?.abort(reason);
  }

  /** The attempt is over: leave the shutdown group. */
  static release(ctx: HandlerContext): void {
    if (ctx.#joined) ctx.#group.delete(ctx);
  }
}

/** Aborts every running handler of one worker that asked for a signal, through a single listener. */
class AbortGroup {
  private readonly members = new Set<HandlerContext>();

  constructor(readonly signal: AbortSignal) {
    signal.addEventListener(
      'abort',
      () => {
        for (const ctx of this.members) HandlerContext.abort(ctx, signal.reason);
      },
      { once: true },
    );
  }

  add(ctx: HandlerContext): void {
    this.members.add(ctx);
  }

  delete(ctx: HandlerContext): void {
    this.members.delete(ctx);
  }
}

function toJobView(job: JobRecord, stages: StageRecord[], def: AnyJob | undefined): JobView {
  const views: StageView[] = [];
  for (let i = 0; i < job.stageCount; i++) {
    const s = stages[i];
    const name = s?.name ?? def?.stages[i]?.name ?? `stage-${i}`;
    if (!s) {
      views.push({
        index: i,
        name,
        status: 'waiting',
        total: 0,
        sealed: false,
        pending: 0,
        running: 0,
        succeeded: 0,
        failed: 0,
      });
      continue;
    }
    const total = s.total ?? s.created;
    const running = Math.max(0, Math.min(s.running, total - s.succeeded - s.failed));
    views.push({
      index: i,
      name,
      status: s.status,
      total,
      sealed: s.total !== null,
      pending: Math.max(0, total - s.succeeded - s.failed - running),
      running,
      succeeded: s.succeeded,
      failed: s.failed,
      startedAt: s.startedAt,
      ...(s.completedAt
        ? {
            completedAt: s.completedAt,
            durationMs: s.completedAt.getTime() - s.startedAt.getTime(),
          }
        : {}),
    });
  }
  const current = job.currentStage >= 0 ? views[job.currentStage] : undefined;
  return {
    id: job.id,
    name: job.name,
    status: job.status,
    transport: job.transport,
    params: job.params,
    ...(current ? { currentStage: { index: current.index, name: current.name } } : {}),
    stages: views,
    createdAt: job.createdAt,
    ...(job.startedAt ? { startedAt: job.startedAt } : {}),
    ...(job.finishedAt
      ? {
          finishedAt: job.finishedAt,
          durationMs: job.finishedAt.getTime() - job.createdAt.getTime(),
        }
      : {}),
    ...(job.result !== undefined ? { result: job.result } : {}),
    ...(job.error ? { error: job.error } : {}),
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

function anySignal(signals: (AbortSignal | undefined)[]): AbortSignal {
  const signal = AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));
  // Every running handler listens for shutdown: hundreds of listeners are expected, not a leak.
  setMaxListeners(0, signal);
  return signal;
}
