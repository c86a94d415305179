import { ValidationError } from '../errors.js';
import type { JobRecord, Store } from '../store.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { Wakeups } from '../util/wakeups.js';
import type { AnyJob } from './api.js';

/** A job's immutable facts, which never change once it is created. */
export type JobInfo = Pick<JobRecord, 'id' | 'name' | 'transport' | 'stageCount' | 'priority'>;

/** How a job ended, as `Store.finishJob` records it. */
export type JobEnding = Parameters<Store['finishJob']>[1];

/**
 * What a worker knows about jobs: their definitions, a bounded cache of their immutable facts, the
 * one way to finish a job (the store's record and the cache eviction go together), and the notice
 * that a job ended in this process, for `waitFor`.
 */
export class JobDirectory {
  /** Woken by job id when this process finished, cancelled or expired the job. */
  private readonly endings = new Wakeups<string>();
  /** A job's facts by id: the load in flight, and once loaded its value. */
  private readonly cache = new Map<
    string,
    { loading: Promise<JobInfo | undefined>; info?: JobInfo }
  >();

  private readonly store: Store;
  readonly definitions: ReadonlyMap<string, AnyJob>;
  private readonly maxCached: number;
  private readonly telemetry: Telemetry | undefined;

  constructor(options: {
    store: Store;
    definitions: ReadonlyMap<string, AnyJob>;
    /** Most jobs whose facts are kept. */
    maxCached: number;
    telemetry?: Telemetry;
  }) {
    this.store = options.store;
    this.definitions = options.definitions;
    this.maxCached = options.maxCached;
    this.telemetry = options.telemetry;
  }

  /**
   * The job's facts, cached; concurrent misses share one read. A loaded job is returned as is,
   * not as a promise: every task of a pack asks, and an await costs a microtask turn even when the
   * value is there.
   */
  info(jobId: string): JobInfo | Promise<JobInfo | undefined> {
    const cached = this.cache.get(jobId);
    if (cached) return cached.info ?? cached.loading;
    const entry: { loading: Promise<JobInfo | undefined>; info?: JobInfo } = {
      loading: this.store.getJob(jobId).then((job) => {
        if (!job) {
          this.cache.delete(jobId);
          return undefined;
        }
        entry.info = {
          id: job.id,
          name: job.name,
          transport: job.transport,
          stageCount: job.stageCount,
          ...(job.priority === undefined ? {} : { priority: job.priority }),
        };
        return entry.info;
      }),
    };
    entry.loading.catch(() => this.cache.delete(jobId));
    if (this.cache.size >= this.maxCached) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(jobId, entry);
    return entry.loading;
  }

  /**
   * Records how the job ended and forgets it: a finished job's messages no longer need it.
   * `transport` (the job's) labels the jobs-finished metric.
   */
  async finish(jobId: string, ending: JobEnding, transport?: string): Promise<void> {
    const finished = await this.store.finishJob(jobId, ending);
    const known = transport ?? this.cache.get(jobId)?.info?.transport;
    this.cache.delete(jobId);
    if (!finished) return;
    this.telemetry?.jobFinished(jobId, ending.status, known);
    this.ended(jobId);
  }

  /** The next notice that this process ended the job (see {@link ended}). */
  nextEnding(jobId: string): { promise: Promise<void>; cancel(): void } {
    return this.endings.next(jobId);
  }

  /**
   * This process ended the job (finished, cancelled or expired it): its waiters are told on the
   * event loop's next turn, once the attempts that ended it have ended too (their spans and
   * counters: they settle in the microtasks that follow the store's answer).
   */
  ended(jobId: string): void {
    setImmediate(() => this.endings.wake(jobId));
  }

  /** The definition a job was submitted under (undefined when this worker does not define it). */
  definition(name: string): AnyJob | undefined {
    return this.definitions.get(name);
  }

  /**
   * A stage of the job by name or index, as an index.
   * @throws {ValidationError} when it is not one of the job's stages
   */
  stageIndex(job: Pick<JobRecord, 'name' | 'stageCount'>, stage: string | number): number {
    if (typeof stage === 'number') {
      if (Number.isInteger(stage) && stage >= 0 && stage < job.stageCount) return stage;
    } else {
      const index = this.definitions.get(job.name)?.stages.findIndex((s) => s.name === stage) ?? -1;
      if (index >= 0) return index;
    }
    throw new ValidationError(
      `stage ${JSON.stringify(stage)} is not a stage of job "${job.name}"`,
      [{ path: 'stage', message: 'unknown stage' }],
    );
  }
}
