/**
 * The `Switchyard` implementation: it builds the engine's modules over one shared context and
 * delegates each call of the public interface to the module that owns it.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { JobInput, JobOutputs, TaskResult } from '../define.js';
import { SwitchyardError } from '../errors.js';
import type { RetryOptions, RetryResult } from '../operations/retry.js';
import type {
  JobPage,
  ListJobsFilter,
  ListTasksOptions,
  PurgeFilter,
  Store,
  TaskPage,
} from '../store.js';
import type { QueueKind, SettlementAction } from '../transport.js';
import type {
  AnyJob,
  JobId,
  JobName,
  JobNamed,
  JobViewOf,
  NamedJob,
  Switchyard,
  UntypedJobId,
} from './api.js';
import { Barrier } from './barrier.js';
import { createContext, type EngineContext } from './context.js';
import { Dispatcher } from './dispatch.js';
import type { InboundMessage } from './inbound.js';
import * as operations from './operations.js';
import { resolveOptions, resolveWorkOptions } from './options.js';
import * as queries from './queries.js';
import { Reconciler } from './reconciler.js';
import { resolveSchedules, Scheduler } from './schedules/scheduler.js';
import type { SchedulePassResult, ScheduleView } from './schedules/types.js';
import { StageAdvance } from './stages/advance.js';
import { StageRunner } from './stages/stage-runner.js';
import { TaskWindow } from './stages/task-window.js';
import { submit } from './submit.js';
import { FlowGate } from './tasks/flow-gate.js';
import { AbortGroup } from './tasks/handler.js';
import { PackRunner } from './tasks/pack-runner.js';
import { TaskRunner } from './tasks/task-runner.js';
import type {
  HandleMeta,
  JobView,
  MetricsReport,
  ReconcileOptions,
  ReconcileResult,
  SubmitOptions,
  SubmitResult,
  SwitchyardOptions,
  WaitForOptions,
  WorkOptions,
} from './types.js';
import { runWorkers } from './worker/work.js';

/**
 * Creates a Switchyard over a store and one or more transports.
 *
 * @example
 * ```ts
 * const yard = createSwitchyard({ jobs: [helloWorld], store: memoryStore(), transports: [memoryTransport()] });
 * const { jobId } = await yard.submit('hello_world', { n: 100 });
 * ```
 * @throws {ValidationError} when an option is invalid (the error names it)
 */
export function createSwitchyard<const Jobs extends readonly NamedJob[]>(
  options: SwitchyardOptions<Jobs>,
): Switchyard<Jobs> {
  return new SwitchyardImpl<Jobs>(options);
}

class SwitchyardImpl<Jobs extends readonly NamedJob[]> implements Switchyard<Jobs> {
  readonly jobs: ReadonlyMap<string, AnyJob>;
  readonly store: Store;
  readonly transportNames: readonly string[];
  private readonly ctx: EngineContext;
  private readonly dispatcher: Dispatcher;
  private readonly reconciler: Reconciler;
  private readonly scheduler: Scheduler;
  private readonly gate: FlowGate | undefined;
  private readonly window: TaskWindow;
  private readonly shutdown = new AbortController();
  /** Aborts the handlers `handle()` runs when the Switchyard closes. */
  private readonly hostGroup: AbortGroup;
  private readonly workers = new Set<Promise<void>>();
  private closed = false;

  constructor(options: SwitchyardOptions<Jobs>) {
    const settings = resolveOptions(options);
    this.ctx = createContext(settings, options.store);
    this.store = options.store;
    this.jobs = settings.jobs;
    this.transportNames = [...settings.transports.keys()];
    setMaxListeners(0, this.shutdown.signal);
    this.hostGroup = new AbortGroup(this.shutdown.signal);
    const advance = new StageAdvance(this.ctx);
    this.window = new TaskWindow(this.ctx);
    const barrier = new Barrier({
      store: this.store,
      onStageComplete: (c) => advance.onStageComplete(c),
      onRoom: (stages) => this.window.freed(stages),
      telemetry: this.ctx.telemetry,
    });
    this.gate = FlowGate.for(this.ctx);
    const tasks = new TaskRunner(this.ctx, { barrier, advance, gate: this.gate });
    this.dispatcher = new Dispatcher({
      ctx: this.ctx,
      stages: new StageRunner(this.ctx, advance, this.window),
      tasks,
      packs: new PackRunner({ ctx: this.ctx, barrier, advance, tasks, gate: this.gate }),
    });
    this.reconciler = new Reconciler(this.ctx, {
      advance,
      window: this.window,
      instanceId: randomUUID(),
    });
    const schedules = resolveSchedules(
      options.schedules,
      options.scheduler,
      new Set(this.jobs.keys()),
    );
    this.scheduler = new Scheduler(this.ctx, {
      ...schedules,
      submit: (request) => submit(this.ctx, request),
      instanceId: randomUUID(),
    });
  }

  runSchedules(): Promise<SchedulePassResult> {
    this.assertOpen();
    return this.scheduler.pass();
  }

  listSchedules(): Promise<ScheduleView[]> {
    return this.scheduler.list();
  }

  pauseSchedule(name: string): Promise<void> {
    return this.scheduler.setPaused(name, true);
  }

  resumeSchedule(name: string): Promise<void> {
    return this.scheduler.setPaused(name, false);
  }

  triggerSchedule(name: string): Promise<SubmitResult> {
    this.assertOpen();
    return this.scheduler.trigger(name);
  }

  submit<N extends JobName<Jobs>>(
    jobName: N,
    params: JobInput<JobNamed<Jobs, N>>,
    options?: SubmitOptions,
  ): Promise<SubmitResult<N>>;
  submit(jobName: string, params: unknown, options?: SubmitOptions): Promise<SubmitResult> {
    this.assertOpen();
    return submit(this.ctx, { jobName, params, options });
  }

  getJob(jobId: UntypedJobId): Promise<JobView | undefined>;
  getJob<N extends JobName<Jobs>>(
    jobId: JobId<N>,
  ): Promise<JobViewOf<JobNamed<Jobs, N>> | undefined>;
  getJob(jobId: string): Promise<JobView | undefined> {
    return queries.getJob(this.ctx, jobId);
  }

  results<O = unknown>(jobId: UntypedJobId, stage?: string | number): AsyncIterable<TaskResult<O>>;
  results<O = unknown>(jobId: string, stage?: number): AsyncIterable<TaskResult<O>>;
  results<N extends JobName<Jobs>, K extends keyof JobOutputs<JobNamed<Jobs, N>> & string>(
    jobId: JobId<N>,
    stage: K,
  ): AsyncIterable<TaskResult<JobOutputs<JobNamed<Jobs, N>>[K]>>;
  results(jobId: string, stage?: string | number): AsyncIterable<TaskResult> {
    return queries.results(this.ctx, jobId, stage);
  }

  cancel(jobId: string): Promise<boolean> {
    return operations.cancel(this.ctx, jobId);
  }

  listJobs(filter?: ListJobsFilter): Promise<JobPage> {
    return operations.listJobs(this.ctx, filter);
  }

  listTasks(jobId: string, options?: ListTasksOptions): Promise<TaskPage> {
    return operations.listTasks(this.ctx, jobId, options);
  }

  retry(jobId: string, options?: RetryOptions): Promise<RetryResult> {
    this.assertOpen();
    return operations.retry(this.ctx, jobId, options);
  }

  retryJobs(filter: ListJobsFilter): Promise<{ jobs: number; retried: number }> {
    this.assertOpen();
    return operations.retryJobs(this.ctx, filter);
  }

  cancelJobs(filter: ListJobsFilter): Promise<{ cancelled: number }> {
    return operations.cancelJobs(this.ctx, filter);
  }

  purge(filter: PurgeFilter): Promise<{ jobs: number; tasks: number }> {
    return operations.purge(this.ctx, filter);
  }

  replayDeadLetters(
    transport: string,
    queue: QueueKind,
    options?: { limit?: number; ids?: readonly string[] },
  ): Promise<number> {
    return operations.replayDeadLetters(this.ctx, { ...options, transport, queue });
  }

  waitFor(jobId: UntypedJobId, options?: WaitForOptions): Promise<JobView>;
  waitFor<N extends JobName<Jobs>>(
    jobId: JobId<N>,
    options?: WaitForOptions,
  ): Promise<JobViewOf<JobNamed<Jobs, N>>>;
  waitFor(jobId: string, options?: WaitForOptions): Promise<JobView> {
    return queries.waitFor(this.ctx, jobId, options);
  }

  metrics(): Promise<MetricsReport> {
    return queries.metrics(this.ctx);
  }

  ready(): Promise<queries.Readiness> {
    return queries.ready(this.ctx);
  }

  async handle(message: unknown, meta: HandleMeta = {}): Promise<SettlementAction> {
    this.assertOpen();
    const inbound: InboundMessage = { body: message, deliveryCount: meta.deliveryCount ?? 1 };
    if (meta.maxDeliveries !== undefined) inbound.maxDeliveries = meta.maxDeliveries;
    // Telemetry only: a bad enqueue time is ignored, never a reason to fail the delivery.
    if (meta.enqueuedAt instanceof Date && !Number.isNaN(meta.enqueuedAt.getTime()))
      inbound.enqueuedAt = meta.enqueuedAt;
    const action = await this.dispatcher.process(inbound, this.hostGroup);
    // The host may freeze the process once this returns: the releases this message made go first.
    await this.window.idle();
    return action;
  }

  reconcile(options?: Omit<ReconcileOptions, 'intervalMs'>): Promise<ReconcileResult> {
    return this.reconciler.reconcile(options);
  }

  async work(options: WorkOptions = {}): Promise<void> {
    this.assertOpen();
    const settings = resolveWorkOptions(options);
    await this.ctx.init();
    const running = runWorkers({
      ctx: this.ctx,
      settings,
      shutdown: this.shutdown.signal,
      process: (message, group) => this.dispatcher.process(message, group),
      reconcile: () => this.reconcile(),
      schedules: { intervalMs: this.scheduler.intervalMs, pass: () => this.scheduler.pass() },
    });
    this.workers.add(running);
    try {
      await running;
    } finally {
      this.workers.delete(running);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.shutdown.abort(new SwitchyardError('CLOSED', 'switchyard closed'));
    await Promise.all([...this.workers]);
    await this.gate?.close();
    await this.window.close();
    this.closed = true;
    // Before the store: the watch's subscription may hold one of its connections.
    await this.ctx.cancels.close();
    const transports = new Set([...this.ctx.settings.transports.values()].map((t) => t.transport));
    await Promise.all([this.store.close(), ...[...transports].map((t) => t.close())]);
  }

  private assertOpen(): void {
    if (this.closed) throw new SwitchyardError('CLOSED', 'switchyard is closed');
  }
}
