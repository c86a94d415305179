/**
 * `work()`: a stage loop and a task loop per configured transport, and the reconciler on its
 * interval, until the signal (or `close()`) stops them; resolves once they drained.
 */
import { setMaxListeners } from 'node:events';
import { toErrorInfo } from '../../errors.js';
import type { SettlementAction } from '../../transport.js';
import type { EngineContext } from '../context.js';
import { DEFAULTS } from '../defaults.js';
import type { InboundMessage } from '../inbound.js';
import { prefetchOf, type WorkSettings } from '../options.js';
import { AbortGroup } from '../tasks/handler.js';
import { receiveLoop } from './receive-loop.js';

export interface WorkerOptions {
  ctx: EngineContext;
  settings: WorkSettings;
  /** Aborted when the Switchyard closes. */
  shutdown: AbortSignal;
  process: (message: InboundMessage, group: AbortGroup) => Promise<SettlementAction>;
  reconcile: () => Promise<unknown>;
  /** The scheduler pass and its interval (0: never). */
  schedules: { intervalMs: number; pass: () => Promise<unknown> };
}

export async function runWorkers(options: WorkerOptions): Promise<void> {
  const { ctx, settings } = options;
  // Cancels reach this worker's running handlers at once where the store notifies of them.
  await ctx.cancels.start();
  const stop = anySignal([settings.signal, options.shutdown]);
  const group = new AbortGroup(stop);
  const loops: Promise<void>[] = [];
  const common = {
    stop,
    group,
    lockMs: settings.visibilityTimeoutMs,
    waitMs: settings.waitMs,
    process: options.process,
    logger: ctx.logger,
  };
  for (const name of settings.transports ?? [...ctx.settings.transports.keys()]) {
    const target = ctx.transportOf(name);
    loops.push(
      receiveLoop({
        ...common,
        target,
        queue: 'stage',
        capacity: DEFAULTS.work.stageConcurrency,
        tasksPerMessage: 1,
        prefetch: 0,
        receivers: DEFAULTS.work.stageReceivers,
      }),
      receiveLoop({
        ...common,
        target,
        queue: 'task',
        capacity: settings.concurrency,
        tasksPerMessage: target.policy.packTasks,
        prefetch: prefetchOf(settings, target.transport.limits),
        receivers: settings.receivers,
      }),
    );
  }
  const every = ctx.settings.reconcile.intervalMs;
  const timer =
    every > 0
      ? setInterval(() => {
          options
            .reconcile()
            .catch((err: unknown) =>
              ctx.logger.error('reconciler pass failed', { error: toErrorInfo(err).message }),
            );
        }, every)
      : undefined;
  timer?.unref();
  const { schedules } = options;
  const scheduleTimer =
    schedules.intervalMs > 0
      ? setInterval(() => {
          schedules
            .pass()
            .catch((err: unknown) =>
              ctx.logger.error('scheduler pass failed', { error: toErrorInfo(err).message }),
            );
        }, schedules.intervalMs)
      : undefined;
  scheduleTimer?.unref();
  try {
    await Promise.all(loops);
  } finally {
    if (timer) clearInterval(timer);
    if (scheduleTimer) clearInterval(scheduleTimer);
  }
}

function anySignal(signals: (AbortSignal | undefined)[]): AbortSignal {
  const signal = AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));
  // Every running handler listens for shutdown: hundreds of listeners are expected, not a leak.
  setMaxListeners(0, signal);
  return signal;
}
