/**
 * A job's finish, run by the stage message past its last stage: the job's `finalize` (if any)
 * turns its results into the job's result, and the job succeeds. A finalize that keeps throwing
 * fails the job after a bounded number of deliveries. (A job without `finalize` is finished by its
 * last stage's advance, and gets this message only from a worker that does not define it.)
 */
import type { TaskResult } from '../../define.js';
import { isSwitchyardError, toErrorInfo } from '../../errors.js';
import type { JobRecord } from '../../store.js';
import type { SettlementAction } from '../../transport.js';
import { canonicalJson } from '../../util/json.js';
import type { AnyJob } from '../api.js';
import type { EngineContext } from '../context.js';
import { DEFAULTS } from '../defaults.js';
import type { InboundMessage } from '../inbound.js';
import { backoffDelay } from '../retry.js';
import { stageResults } from './results.js';

export interface FinalizeOptions {
  job: JobRecord;
  definition: AnyJob;
  message: InboundMessage;
}

export async function finalize(
  ctx: EngineContext,
  { job, definition, message }: FinalizeOptions,
): Promise<SettlementAction> {
  const stages = await ctx.store.getStages(job.id);
  const last = stages[job.stageCount - 1];
  // A duplicate that raced ahead of the last stage's completion: the completion sends another.
  if (job.currentStage !== job.stageCount - 1 || last?.status !== 'complete')
    return { action: 'complete' };
  try {
    const result = definition.finalize
      ? await definition.finalize({
          jobId: job.id,
          params: job.params,
          stages: stages.map((s) => ({
            name: s.name,
            total: s.total ?? 0,
            succeeded: s.succeeded,
            failed: s.failed,
          })),
          results: <O>(stageName: string) =>
            stageResults(
              ctx.store,
              job.id,
              ctx.directory.stageIndex(job, stageName),
            ) as AsyncIterable<TaskResult<O>>,
          logger: ctx.logger,
        })
      : undefined;
    const stored =
      result === undefined ? undefined : JSON.parse(canonicalJson(result, 'finalize result'));
    await ctx.directory.finish(
      job.id,
      {
        status: 'succeeded',
        ...(stored === undefined ? {} : { result: stored }),
      },
      job.transport,
    );
    return { action: 'complete' };
  } catch (err) {
    const info = toErrorInfo(err);
    // A Switchyard error (a result JSON cannot carry, an unknown stage) fails the same way again.
    if (message.deliveryCount >= DEFAULTS.maxStageDeliveries || isSwitchyardError(err)) {
      await ctx.directory.finish(
        job.id,
        {
          status: 'failed',
          error: { ...info, message: `finalize failed: ${info.message}` },
        },
        job.transport,
      );
      return { action: 'complete' };
    }
    return {
      action: 'retry',
      delayMs: backoffDelay(ctx.settings.retry, message.deliveryCount),
      reason: info.message,
    };
  }
}
