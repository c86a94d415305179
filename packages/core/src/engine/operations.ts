/**
 * Operating jobs through the Switchyard: listing, re-running what failed, cancelling and purging
 * by filter, and dead-letter replay that re-opens what it replays. Built on the store's operating
 * methods and `../operations`; the engine's own part is re-sending re-opened tasks, the way the
 * reconciler re-sends a lost task's message.
 */

import { SwitchyardError } from '../errors.js';
import { cancelJobs as cancelByFilter } from '../operations/cancel.js';
import { checkInstants } from '../operations/instant.js';
import { purgeJobs } from '../operations/purge.js';
import { replayDeadLetters as replayReopening } from '../operations/replay.js';
import {
  type RetryDeps,
  type RetryOptions,
  type RetryResult,
  retryJobs as retryByFilter,
  retryJob,
} from '../operations/retry.js';
import type {
  JobPage,
  JobRecord,
  ListJobsFilter,
  ListTasksOptions,
  PurgeFilter,
  TaskPage,
} from '../store.js';
import type { QueueKind } from '../transport.js';
import type { EngineContext } from './context.js';
import { resendTasks } from './outbox.js';

/** A filter's dates, checked before any store sees them (a store cannot hold every Date). */
function checkedFilter<F extends ListJobsFilter>(filter: F): F {
  checkInstants({ createdAfter: filter.createdAfter, createdBefore: filter.createdBefore });
  return filter;
}

export async function listJobs(ctx: EngineContext, filter: ListJobsFilter = {}): Promise<JobPage> {
  return ctx.store.listJobs(checkedFilter(filter));
}

export function listTasks(
  ctx: EngineContext,
  jobId: string,
  options: ListTasksOptions = {},
): Promise<TaskPage> {
  return ctx.store.listTasks(jobId, options);
}

/** Runs each re-opened task again on the job's path (attempts from the store). */
function retryDeps(ctx: EngineContext): RetryDeps {
  return {
    store: ctx.store,
    resendTasks: async (job: JobRecord, taskIds: readonly string[]) => {
      const tasks = (await Promise.all(taskIds.map((id) => ctx.store.getTask(id)))).filter(
        (t) => t !== undefined,
      );
      await resendTasks(ctx.transportOf(job.transport), tasks, job.priority);
    },
  };
}

export function retry(
  ctx: EngineContext,
  jobId: string,
  options?: RetryOptions,
): Promise<RetryResult> {
  return retryJob(retryDeps(ctx), jobId, options);
}

export async function retryJobs(
  ctx: EngineContext,
  filter: ListJobsFilter,
): Promise<{ jobs: number; retried: number }> {
  return retryByFilter(retryDeps(ctx), checkedFilter(filter));
}

/**
 * Cancels a job. The running handlers of this Switchyard see their signal abort at once, whatever
 * the store; other instances' through their cancel watch.
 */
export async function cancel(ctx: EngineContext, jobId: string): Promise<boolean> {
  const cancelled = await ctx.store.cancelJob(jobId);
  if (cancelled) {
    void ctx.cancels.abort(jobId);
    ctx.directory.ended(jobId);
  }
  return cancelled;
}

export async function cancelJobs(
  ctx: EngineContext,
  filter: ListJobsFilter,
): Promise<{ cancelled: number }> {
  return cancelByFilter(
    { listJobs: (f) => ctx.store.listJobs(f), cancelJob: (id) => cancel(ctx, id) },
    checkedFilter(filter),
  );
}

export async function purge(
  ctx: EngineContext,
  filter: PurgeFilter,
): Promise<{ jobs: number; tasks: number }> {
  const { jobs, tasks } = await purgeJobs(ctx.store, filter);
  return { jobs, tasks };
}

/**
 * Replays a path's dead letters, re-opening each replayed task first; letters that cannot re-run
 * stay dead-lettered.
 * @throws SwitchyardError `UNKNOWN_TRANSPORT`, or `INVALID_INPUT` when the transport has no dead letters.
 */
export function replayDeadLetters(
  ctx: EngineContext,
  {
    transport,
    queue,
    ...options
  }: { transport: string; queue: QueueKind; limit?: number; ids?: readonly string[] },
): Promise<number> {
  const target = ctx.transportOf(transport).transport;
  if (!target.replayDeadLetters || !target.listDeadLetters)
    throw new SwitchyardError('INVALID_INPUT', `transport ${transport} keeps no dead letters`);
  return replayReopening(
    {
      store: ctx.store,
      transport: {
        listDeadLetters: target.listDeadLetters.bind(target),
        replayDeadLetters: target.replayDeadLetters.bind(target),
      },
    },
    queue,
    options,
  );
}
