/**
 * The reconciler: re-drives work that a crash between the store and a transport left stuck — a
 * job never started, a fan-out never finished, a complete stage never advanced, a task whose
 * message was lost — then applies `retention`. One instance at a time holds its lease; a pass
 * re-drives at most `limit` items and purges a bounded number of small batches.
 */
import { toErrorInfo } from '../errors.js';
import { retentionPass } from '../operations/purge.js';
import type { StuckWork } from '../store.js';
import type { EngineContext } from './context.js';
import { DEFAULTS } from './defaults.js';
import { resendTasks, sendStageMessage } from './outbox.js';
import type { StageAdvance } from './stages/advance.js';
import type { TaskWindow } from './stages/task-window.js';
import type { ReconcileOptions, ReconcileResult } from './types.js';

/** The store lease that admits one reconciler at a time. */
const LEASE = 'reconciler';

export interface ReconcilerOptions {
  advance: StageAdvance;
  /** Releases what stalled fairness windows may release. */
  window: TaskWindow;
  /** This Switchyard's id, the lease's owner. */
  instanceId: string;
}

export class Reconciler {
  private running: Promise<ReconcileResult> | undefined;
  private readonly advance: StageAdvance;
  private readonly window: TaskWindow;
  private readonly instanceId: string;

  constructor(
    private readonly ctx: EngineContext,
    options: ReconcilerOptions,
  ) {
    this.advance = options.advance;
    this.window = options.window;
    this.instanceId = options.instanceId;
  }

  /**
   * One pass. A call during a pass joins it: the lease admits its owner again, so a pass
   * outliving the interval would otherwise overlap the next and both would re-send the same tasks.
   */
  reconcile(options: Omit<ReconcileOptions, 'intervalMs'> = {}): Promise<ReconcileResult> {
    this.running ??= this.pass(options).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(options: Omit<ReconcileOptions, 'intervalMs'>): Promise<ReconcileResult> {
    const { store, settings } = this.ctx;
    await this.ctx.init();
    const olderThanMs = options.olderThanMs ?? settings.reconcile.olderThanMs;
    const limit = options.limit ?? settings.reconcile.limit;
    const leaseMs = Math.max(DEFAULTS.reconcile.minLeaseMs, olderThanMs);
    if (!(await store.acquireLease(LEASE, this.instanceId, leaseMs)))
      return { ran: false, redriven: {}, purged: { jobs: 0, tasks: 0 } };
    const redriven: Record<string, number> = {};
    for (const item of await store.findStuck({ olderThanMs, limit })) {
      if (!settings.transports.has(item.transport)) continue;
      try {
        const n = await this.redrive(item);
        if (n === 0) continue;
        redriven[item.kind] = (redriven[item.kind] ?? 0) + n;
        this.ctx.telemetry.redriven(item.transport, item.kind, n);
        await store.incrementCounter(item.transport, item.kind, n);
      } catch (err) {
        this.ctx.logger.error('reconciler could not re-drive', {
          kind: item.kind,
          jobId: item.jobId,
          error: toErrorInfo(err).message,
        });
      }
    }
    await this.releaseStalled(redriven);
    return { ran: true, redriven, purged: await this.retain() };
  }

  /**
   * Releases what windowed stages may release but did not (their finished tasks' release was lost
   * with a crash): counted as `window-released`. A failure is logged; the next pass tries again.
   */
  private async releaseStalled(redriven: Record<string, number>): Promise<void> {
    try {
      const released = await this.window.sweep();
      if (released > 0) redriven['window-released'] = released;
    } catch (err) {
      this.ctx.logger.error('reconciler could not release windowed tasks', {
        error: toErrorInfo(err).message,
      });
    }
  }

  /**
   * Purges the jobs past their retention, after the re-drives (which it must not hold up): the
   * pass's batches and time are bounded (defaults.ts), the rest waits for the next pass. A failure
   * is logged; the next pass tries again.
   */
  private async retain(): Promise<{ jobs: number; tasks: number }> {
    const { retention } = this.ctx.settings;
    if (Object.keys(retention).length === 0) return { jobs: 0, tasks: 0 };
    const d = DEFAULTS.retention;
    try {
      const purged = await retentionPass(this.ctx.store, retention, {
        batchJobs: d.batchJobs,
        batchTasks: d.batchTasks,
        pauseMs: d.pauseMs,
        maxBatches: d.maxBatchesPerPass,
        signal: AbortSignal.timeout(d.maxPassMs),
      });
      if (purged.jobs > 0 || purged.tasks > 0)
        this.ctx.logger.info('retention purged finished jobs', { ...purged });
      return purged;
    } catch (err) {
      this.ctx.logger.error('retention could not purge', { error: toErrorInfo(err).message });
      return { jobs: 0, tasks: 0 };
    }
  }

  /** Re-drives one stuck item; returns how many re-drives it made (0: nothing was stuck after all). */
  private async redrive(item: StuckWork): Promise<number> {
    const target = this.ctx.transportOf(item.transport);
    switch (item.kind) {
      case 'job-not-started':
        await sendStageMessage(target, { jobId: item.jobId, stage: 0 });
        return 1;
      case 'fanout-incomplete':
        await sendStageMessage(target, { jobId: item.jobId, stage: item.stage });
        return 1;
      case 'stage-not-advanced':
      case 'finalize-not-done':
        return (await this.advance.redriveCurrent(item.jobId)) ? 1 : 0;
      case 'task-message-lost': {
        const { store } = this.ctx;
        const tasks = (await Promise.all(item.taskIds.map((id) => store.getTask(id)))).filter(
          (t) => t !== undefined,
        );
        const priority = (await this.ctx.directory.info(item.jobId))?.priority;
        await resendTasks(target, tasks, priority);
        await store.touchTasks?.(tasks.map((t) => t.id));
        return tasks.length;
      }
    }
  }
}
