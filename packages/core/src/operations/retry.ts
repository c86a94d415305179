/**
 * Re-running what failed: {@link retryJob} re-opens a job's failed tasks through the store and
 * re-sends their messages; {@link retryJobs} does it for every job a filter matches.
 * @module
 */
import { SwitchyardError, ValidationError } from '../errors.js';
import type { JobRecord, JobStatus, ListJobsFilter, Store } from '../store.js';
import { eachJob } from './each-job.js';

/** Which failed tasks of a job {@link retryJob} re-runs. */
export interface RetryOptions {
  /** The stage, by name or index. @defaultValue the latest stage with failed tasks */
  stage?: string | number;
  /** Only these tasks (of one stage). @defaultValue every failed task of the stage */
  taskIds?: readonly string[];
}

export interface RetryResult {
  jobId: string;
  /** Tasks put back to pending and re-sent. */
  retried: number;
  /** The job's status after the call (`running` when tasks were retried). */
  status: JobStatus;
}

export interface RetryDeps {
  store: Pick<Store, 'getJob' | 'getStages' | 'reopenTasks' | 'listJobs'>;
  /**
   * Sends one task message per re-opened task, as the reconciler re-sends a lost one (claimed,
   * attempts from the store). Should this fail, the tasks are still pending with a fresh clock:
   * the reconciler re-sends them once they count as lost.
   */
  resendTasks(job: JobRecord, taskIds: readonly string[]): Promise<void>;
}

/**
 * Re-runs a job's failed tasks (see {@link Store.reopenTasks} for the rules): they go back to
 * pending with their attempts reset, the stage re-opens and the job runs on from there.
 * @throws SwitchyardError `JOB_NOT_FOUND` for an unknown job.
 * @throws ValidationError for a stage the job does not have, or task ids of several stages.
 */
export async function retryJob(
  deps: RetryDeps,
  jobId: string,
  options: RetryOptions = {},
): Promise<RetryResult> {
  const stage =
    typeof options.stage === 'string'
      ? await stageIndex(deps, jobId, options.stage)
      : options.stage;
  if (stage !== undefined && (!Number.isInteger(stage) || stage < 0))
    throw new ValidationError('stage must be a stage name or a non-negative index', [
      { path: 'stage', message: `got ${JSON.stringify(options.stage)}` },
    ]);
  if (typeof options.stage === 'number') await checkStageIndex(deps, jobId, options.stage);
  const reopened = await deps.store.reopenTasks({
    jobId,
    ...(stage === undefined ? {} : { stage }),
    ...(options.taskIds ? { taskIds: options.taskIds } : {}),
  });
  if (reopened.taskIds.length > 0) await deps.resendTasks(reopened.job, reopened.taskIds);
  return { jobId, retried: reopened.taskIds.length, status: reopened.job.status };
}

/**
 * Retries every job matching `filter` (by default its failed jobs).
 * @returns how many jobs had tasks retried, and how many tasks in all.
 */
export async function retryJobs(
  deps: RetryDeps,
  filter: ListJobsFilter,
): Promise<{ jobs: number; retried: number }> {
  let jobs = 0;
  let retried = 0;
  for await (const job of eachJob(deps.store, { status: 'failed', ...filter })) {
    const result = await retryJob(deps, job.id);
    if (result.retried > 0) jobs++;
    retried += result.retried;
  }
  return { jobs, retried };
}

/** An index the job's stages reach: one past them names nothing to re-run. */
async function checkStageIndex(deps: RetryDeps, jobId: string, stage: number): Promise<void> {
  const job = await deps.store.getJob(jobId);
  if (!job) throw new SwitchyardError('JOB_NOT_FOUND', `job ${jobId} not found`);
  if (stage >= job.stageCount)
    throw new ValidationError(`job ${jobId} has ${job.stageCount} stage(s)`, [
      { path: 'stage', message: `must be below ${job.stageCount}` },
    ]);
}

async function stageIndex(deps: RetryDeps, jobId: string, name: string): Promise<number> {
  const job = await deps.store.getJob(jobId);
  if (!job) throw new SwitchyardError('JOB_NOT_FOUND', `job ${jobId} not found`);
  const stage = (await deps.store.getStages(jobId)).find((s) => s.name === name);
  if (!stage)
    throw new ValidationError(`job ${jobId} has no started stage named ${name}`, [
      { path: 'stage', message: `unknown stage ${name}` },
    ]);
  return stage.index;
}
