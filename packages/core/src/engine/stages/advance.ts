/**
 * What happens when a stage completes: the job fails if the stage had more failed tasks than it
 * tolerates, otherwise the next stage's message is sent — past the last stage, the finish message
 * when the job has a `finalize` to run, and otherwise the job succeeds here. Acting on a completion
 * twice is harmless: the stage message is idempotent, the advance is a compare-and-set on the
 * job's current stage, and so is the finish.
 */

import type { Span } from '@opentelemetry/api';
import type { StageDefinition } from '../../define.js';
import { JobFailedError, toErrorInfo } from '../../errors.js';
import { FINISHED_STATUSES } from '../../operations/statuses.js';
import type { JobRecord, StageCompletion, StageRecord } from '../../store.js';
import { advanceSpan } from '../../telemetry/steps.js';
import { traceFieldsOf } from '../../telemetry/trace-context.js';
import type { EngineContext } from '../context.js';
import { sendStageMessage } from '../outbox.js';

/** Failed task ids named in a failed job's error. */
const FAILED_TASKS_NAMED = 10;

export class StageAdvance {
  private readonly rechecks = new Map<string, Promise<void>>();

  constructor(private readonly ctx: EngineContext) {}

  /** A stage completed: fail the job if it had more failures than it tolerates, else advance. */
  async onStageComplete(c: StageCompletion): Promise<void> {
    const job = await this.ctx.store.getJob(c.jobId);
    if (!job || FINISHED_STATUSES.has(job.status) || job.currentStage !== c.stage) return;
    const spec = advanceSpan(this.ctx.telemetry, c, job);
    await this.ctx.telemetry.inSpan(spec, (span) => this.advanceOrFail(c, job, span));
  }

  private async advanceOrFail(c: StageCompletion, job: JobRecord, span: Span): Promise<void> {
    const { store, directory } = this.ctx;
    const definition = directory.definition(job.name);
    const stageDef = definition?.stages[c.stage];
    const tolerated = tolerance(stageDef?.tolerateFailures, c.total);
    if (c.failed <= tolerated) {
      // Nothing left to run: the job succeeds here, without a message's round trip (a worker that
      // does not define the job cannot know that, and sends the message). A crash before it is
      // left to the task message's redelivery (its duplicate rechecks the stage) or to the
      // reconciler (`finalize-not-done`), as a lost finish message would be.
      if (c.stage + 1 >= job.stageCount && definition && !definition.finalize) {
        await directory.finish(job.id, { status: 'succeeded' }, job.transport);
        return;
      }
      const target = this.ctx.transportOf(job.transport);
      await sendStageMessage(target, {
        jobId: job.id,
        stage: c.stage + 1,
        trace: traceFieldsOf(span),
      });
      return;
    }
    const failed = await store.listTasks(c.jobId, {
      stage: c.stage,
      status: 'failed',
      limit: FAILED_TASKS_NAMED,
    });
    const ids = failed.tasks.map((t) => t.id);
    const more = c.failed > ids.length ? ` and ${c.failed - ids.length} more` : '';
    const first = failed.tasks[0]?.error?.message;
    const error = new JobFailedError(
      c.jobId,
      `stage "${stageDef?.name ?? c.stage}" failed: ${c.failed} of ${c.total} task(s) failed (tolerated ${tolerated}): ${ids.join(', ')}${more}${first ? ` — first error: ${first}` : ''}`,
      ids,
    );
    await directory.finish(
      c.jobId,
      {
        status: 'failed',
        error: {
          ...toErrorInfo(error),
          details: { stage: c.stage, failed: c.failed, total: c.total, failedTasks: ids },
        },
      },
      job.transport,
    );
  }

  /**
   * Acts again on the stage if it is complete and the job still in it: a duplicate or redelivered
   * message calls this, since the crash that caused it may have lost the advance. Concurrent
   * rechecks of one stage share one.
   */
  recheck(jobId: string, stage: number): Promise<void> {
    const key = `${jobId}.${stage}`;
    let pending = this.rechecks.get(key);
    if (!pending) {
      pending = this.recheckNow(jobId, stage).finally(() => this.rechecks.delete(key));
      this.rechecks.set(key, pending);
    }
    return pending;
  }

  /** Acts on the job's current stage again if it is complete (the reconciler's re-drive). */
  async redriveCurrent(jobId: string): Promise<boolean> {
    const job = await this.ctx.store.getJob(jobId);
    if (!job) return false;
    const s = (await this.ctx.store.getStages(jobId))[job.currentStage];
    if (s?.status !== 'complete') return false;
    await this.onStageComplete(completionOf(s));
    return true;
  }

  private async recheckNow(jobId: string, stage: number): Promise<void> {
    const job = await this.ctx.store.getJob(jobId);
    if (!job || FINISHED_STATUSES.has(job.status) || job.currentStage !== stage) return;
    const s = (await this.ctx.store.getStages(jobId))[stage];
    if (s?.status === 'complete') await this.onStageComplete(completionOf(s));
  }
}

/** The completion a complete stage's record describes (to act on it again, idempotently). */
export function completionOf(stage: StageRecord): StageCompletion {
  return {
    jobId: stage.jobId,
    stage: stage.index,
    succeeded: stage.succeeded,
    failed: stage.failed,
    total: stage.total ?? 0,
  };
}

/** How many failed tasks a stage of `total` tasks tolerates. */
export function tolerance(t: StageDefinition['tolerateFailures'], total: number): number {
  if (t === undefined) return 0;
  if (typeof t === 'number') return Math.max(0, t);
  return Math.floor(Math.max(0, Math.min(1, t.ratio)) * total);
}
