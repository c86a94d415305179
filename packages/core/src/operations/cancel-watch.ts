/**
 * How a cancel reaches handlers already running: every running handler that reads its
 * `ctx.signal` registers its job here, and the watch aborts it when the job is cancelled — at once
 * where the store tells of cancels ({@link Store.onCancel}: Postgres `LISTEN/NOTIFY`, the memory
 * store in process), and otherwise at the next check, every `intervalMs` while anything runs
 * ({@link Store.cancelledJobs}, one round trip for all running jobs).
 * @module
 */
import { SwitchyardError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store.js';

/** Default of {@link CancelWatchOptions.intervalMs}. */
export const DEFAULT_CANCEL_CHECK_MS = 1000;

/** The shortest check interval: a tighter loop would spend the store's round trips on nothing. */
export const MIN_CANCEL_CHECK_MS = 10;

export interface CancelWatchOptions {
  /**
   * Where cancels are learnt. With `getJob`, a job cancelled by its deadline aborts its handlers
   * with `DEADLINE_EXCEEDED` rather than `JOB_CANCELLED` (one read per cancelled job).
   */
  store: Pick<Store, 'cancelledJobs' | 'onCancel'> & Partial<Pick<Store, 'getJob'>>;
  /**
   * How often the running jobs are checked: the bound on how long a handler runs on after its
   * job was cancelled when the store cannot tell at once (10 at least). @defaultValue 1000
   */
  intervalMs?: number;
  logger?: Pick<Logger, 'warn'>;
}

/** What the watch aborts: an `AbortController`, or anything with its `abort(reason)`. */
export interface Abortable {
  abort(reason?: unknown): void;
}

/** The error a cancelled job's handlers see as their `ctx.signal.reason`. */
export function jobCancelledError(jobId: string): SwitchyardError {
  return new SwitchyardError('JOB_CANCELLED', `job ${jobId} was cancelled`);
}

/** The error the handlers of a job cancelled by its deadline see as their `ctx.signal.reason`. */
export function deadlineExceededError(jobId: string, deadlineAt?: Date): SwitchyardError {
  const when = deadlineAt ? ` ${deadlineAt.toISOString()}` : '';
  return new SwitchyardError(
    'DEADLINE_EXCEEDED',
    `job ${jobId} did not finish by its deadline${when} and was cancelled`,
  );
}

export class CancelWatch {
  private readonly running = new Map<string, Set<Abortable>>();
  /**
   * Jobs found cancelled while handlers of theirs run: the abort reason, or its lookup in flight.
   * A job here is not checked again, and a handler of it that registers late is aborted at once.
   */
  private readonly cancelled = new Map<string, SwitchyardError | Promise<void>>();
  private readonly intervalMs: number;
  private timer: ReturnType<typeof setInterval> | undefined;
  private starting: Promise<void> | undefined;
  private stopListening: (() => Promise<void>) | undefined;
  private checking: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: CancelWatchOptions) {
    this.intervalMs = Math.max(MIN_CANCEL_CHECK_MS, options.intervalMs ?? DEFAULT_CANCEL_CHECK_MS);
  }

  /** Subscribes to the store's cancel notifications, if it has them. Idempotent. */
  start(): Promise<void> {
    this.starting ??= this.listen();
    return this.starting;
  }

  private async listen(): Promise<void> {
    const { store } = this.options;
    if (!store.onCancel || this.closed) return;
    try {
      const stop = await store.onCancel((jobId) => void this.abort(jobId));
      if (this.closed) await stop().catch(() => {});
      else this.stopListening = stop;
    } catch (err) {
      // Not fatal: the periodic check still finds every cancel.
      this.options.logger?.warn('cancel notifications unavailable; checking periodically', {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /**
   * Registers a running handler of `jobId`: `target` is aborted with a `JOB_CANCELLED` (or
   * `DEADLINE_EXCEEDED`) error if the job is cancelled. Call the returned function when the
   * handler ends.
   */
  track(jobId: string, target: Abortable): () => void {
    let set = this.running.get(jobId);
    if (!set) {
      set = new Set();
      this.running.set(jobId, set);
    }
    set.add(target);
    const known = this.cancelled.get(jobId);
    if (known instanceof SwitchyardError) target.abort(known);
    this.arm();
    return () => {
      const current = this.running.get(jobId);
      current?.delete(target);
      if (current?.size === 0) {
        this.running.delete(jobId);
        this.cancelled.delete(jobId);
      }
      if (this.running.size === 0) this.disarm();
    };
  }

  /**
   * Aborts every running handler of `jobId` (the job was cancelled); resolves once they are.
   * The reason is read from the job's record when the store can: `DEADLINE_EXCEEDED` for a job
   * its deadline cancelled, `JOB_CANCELLED` otherwise.
   */
  abort(jobId: string): Promise<void> {
    if (!this.running.has(jobId)) return Promise.resolve();
    const known = this.cancelled.get(jobId);
    if (known instanceof Promise) return known;
    if (known) return Promise.resolve();
    const aborting = this.reasonFor(jobId).then((reason) => {
      const set = this.running.get(jobId);
      if (!set) {
        this.cancelled.delete(jobId);
        return;
      }
      this.cancelled.set(jobId, reason);
      for (const target of set) target.abort(reason);
    });
    this.cancelled.set(jobId, aborting);
    return aborting;
  }

  /** Checks the running jobs not yet known cancelled now; one check at a time. */
  check(): Promise<void> {
    this.checking ??= (async () => {
      try {
        const ids = [...this.running.keys()].filter((id) => !this.cancelled.has(id));
        if (ids.length === 0) return;
        const found = await this.options.store.cancelledJobs(ids);
        await Promise.all(found.map((id) => this.abort(id)));
      } catch (err) {
        this.options.logger?.warn('could not check for cancelled jobs', {
          error: err instanceof Error ? err.message : String(err),
        });
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }

  /** Stops listening and checking; handlers registered still end as they would. */
  async close(): Promise<void> {
    this.closed = true;
    this.disarm();
    await this.starting;
    await this.stopListening?.().catch(() => {});
    this.stopListening = undefined;
  }

  /** Why the job's handlers are aborted: its deadline, or a cancel. Never rejects. */
  private async reasonFor(jobId: string): Promise<SwitchyardError> {
    const { store } = this.options;
    if (!store.getJob) return jobCancelledError(jobId);
    try {
      const job = await store.getJob(jobId);
      return job?.error?.code === 'DEADLINE_EXCEEDED'
        ? deadlineExceededError(jobId, job.deadlineAt)
        : jobCancelledError(jobId);
    } catch (err) {
      this.options.logger?.warn(
        'could not read a cancelled job; aborting its handlers as cancelled',
        {
          jobId,
          error: err instanceof Error ? err.message : String(err),
        },
      );
      return jobCancelledError(jobId);
    }
  }

  private arm(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref?.();
  }

  private disarm(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
