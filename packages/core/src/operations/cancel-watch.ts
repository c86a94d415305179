/**
 * How a cancel reaches handlers already running: every running handler registers its job and its
 * abort controller here; the watch aborts them when the job is cancelled — at once where the
 * store tells of cancels ({@link Store.onCancel}: Postgres `LISTEN/NOTIFY`, the memory store in
 * process), and otherwise at the next check, every `intervalMs` while anything runs
 * ({@link Store.cancelledJobs}, one round trip for all running jobs).
 * @module
 */
import { SwitchyardError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store.js';

/** Default of {@link CancelWatchOptions.intervalMs}. */
export const DEFAULT_CANCEL_CHECK_MS = 1000;

export interface CancelWatchOptions {
  store: Pick<Store, 'cancelledJobs' | 'onCancel'>;
  /**
   * How often the running jobs are checked: the bound on how long a handler runs on after its
   * job was cancelled when the store cannot tell at once. @defaultValue 1000
   */
  intervalMs?: number;
  logger?: Pick<Logger, 'warn'>;
}

/** The error a cancelled job's handlers see as their `ctx.signal.reason`. */
export function jobCancelledError(jobId: string): SwitchyardError {
  return new SwitchyardError('JOB_CANCELLED', `job ${jobId} was cancelled`);
}

export class CancelWatch {
  private readonly running = new Map<string, Set<AbortController>>();
  private readonly intervalMs: number;
  private timer: ReturnType<typeof setInterval> | undefined;
  private stopListening: (() => Promise<void>) | undefined;
  private checking: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: CancelWatchOptions) {
    this.intervalMs = Math.max(10, options.intervalMs ?? DEFAULT_CANCEL_CHECK_MS);
  }

  /** Subscribes to the store's cancel notifications, if it has them. Idempotent. */
  async start(): Promise<void> {
    if (this.stopListening || !this.options.store.onCancel || this.closed) return;
    try {
      this.stopListening = await this.options.store.onCancel((jobId) => this.abort(jobId));
    } catch (err) {
      // Not fatal: the periodic check still finds every cancel.
      this.options.logger?.warn('cancel notifications unavailable; checking periodically', {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /**
   * Registers a running handler of `jobId`: `controller` is aborted with a `JOB_CANCELLED` error
   * if the job is cancelled. Call the returned function when the handler ends.
   */
  track(jobId: string, controller: AbortController): () => void {
    let set = this.running.get(jobId);
    if (!set) {
      set = new Set();
      this.running.set(jobId, set);
    }
    set.add(controller);
    this.arm();
    return () => {
      const current = this.running.get(jobId);
      current?.delete(controller);
      if (current?.size === 0) this.running.delete(jobId);
      if (this.running.size === 0) this.disarm();
    };
  }

  /** Aborts every running handler of `jobId` (the job was cancelled). */
  abort(jobId: string): void {
    const set = this.running.get(jobId);
    if (!set) return;
    const reason = jobCancelledError(jobId);
    for (const controller of set) controller.abort(reason);
  }

  /** Checks the running jobs now; one check at a time. */
  check(): Promise<void> {
    this.checking ??= (async () => {
      try {
        const ids = [...this.running.keys()];
        if (ids.length === 0) return;
        for (const id of await this.options.store.cancelledJobs(ids)) this.abort(id);
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

  async close(): Promise<void> {
    this.closed = true;
    this.disarm();
    await this.stopListening?.().catch(() => {});
    this.stopListening = undefined;
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
