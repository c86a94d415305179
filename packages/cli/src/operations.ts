/**
 * `switchyard jobs | retry | cancel | purge`: listing jobs and operating them, one by id or many
 * by filter, through the Switchyard's operations (`listJobs`, `retry`, `retryJobs`, `cancel`,
 * `cancelJobs`, `purge`).
 */
import type {
  JobPage,
  JobStatus,
  JobView,
  ListJobsFilter,
  PurgeFilter,
  RetryOptions,
  Switchyard,
} from '@switchyard/core';
import {
  CANCELLABLE_STATUSES,
  FINISHED_JOB_STATUSES,
  isPriority,
  JOB_STATUSES,
  parseDuration,
  parseInstant,
  RETRYABLE_STATUSES,
  SwitchyardError,
} from '@switchyard/core';
import { table } from './render.js';

export type OperationCommand = 'jobs' | 'retry' | 'cancel' | 'purge';

/** The command-line flags the operations read (as `parseArgs` returns them). */
export interface OperationFlags {
  status?: string | undefined;
  name?: string | undefined;
  transport?: readonly string[] | undefined;
  priority?: string | undefined;
  since?: string | undefined;
  limit?: string | undefined;
  cursor?: string | undefined;
  stage?: string | undefined;
  task?: readonly string[] | undefined;
  'older-than'?: string | undefined;
}

export type Operation =
  | { kind: 'list'; filter: ListJobsFilter }
  | { kind: 'retry'; jobId: string; options: RetryOptions }
  | { kind: 'retryJobs'; filter: ListJobsFilter }
  | { kind: 'cancel'; jobId: string }
  | { kind: 'cancelJobs'; filter: ListJobsFilter }
  | { kind: 'purge'; filter: PurgeFilter };

/** What each command's `--status` can name: the statuses it can act on. */
const STATUSES: Record<OperationCommand, readonly JobStatus[]> = {
  jobs: JOB_STATUSES,
  retry: RETRYABLE_STATUSES,
  cancel: CANCELLABLE_STATUSES,
  purge: FINISHED_JOB_STATUSES,
};
const MAX_PAGE = 500;

/** `switchyard <command> --help` of the operations. */
export const OPERATIONS_USAGE: Record<OperationCommand, string> = {
  jobs: `Usage: switchyard jobs [--status S] [--name N] [--transport T] [--priority P]
                       [--since ISO|DURATION] [--limit N] [--cursor C] [--json]

Jobs newest first, one page at a time: id, name, status, path, created, progress (the current
stage's tasks done of its total). Follow "next page: --cursor …" for the next page.

  --status S               scheduled, queued, running, succeeded, failed or cancelled (several: failed,cancelled)
  --name N                 only jobs of this name
  --transport T            only jobs on this path
  --priority P             only jobs of this priority: high, normal or low
  --since ISO|DURATION     created at or after a time (2026-01-31T12:00:00Z) or that long ago (24h, 7d)
  --limit N                jobs per page, 1 to ${MAX_PAGE} (default 50)
  --cursor C               the page after the one that printed this cursor
  --json                   the page as JSON: { jobs, nextCursor? }`,
  retry: `Usage: switchyard retry <jobId> [--stage S] [--task ID …] [--json]
       switchyard retry --status S [--name N] [--transport T] [--priority P] [--since ISO|DURATION] [--json]

Re-runs failed tasks with their attempts reset: the stage re-opens and the job runs on from it to
its end (a worker must be running: a host, or "switchyard work"). One job: the latest stage with
failed tasks, or --stage, or only the --task ids; exit 1 when nothing was retried (the job is
cancelled, not started, or has no failed task there). Every job a filter matches: at least one
filter flag is required.

  --stage S                a stage name or index
  --task ID                a failed task's id (repeatable; tasks of one stage)
  --status S               failed, succeeded or running (several: failed,succeeded)
  --name N, --transport T, --priority P, --since ISO|DURATION
                           narrow the jobs, as for "switchyard jobs"`,
  cancel: `Usage: switchyard cancel <jobId> [--json]
       switchyard cancel --status S [--name N] [--transport T] [--priority P] [--since ISO|DURATION] [--json]

Cancels a job (no new task starts; running handlers see their signal abort), or every unfinished
job a filter matches (at least one filter flag is required). One job: exit 1 when it was already
finished.

  --status S               scheduled, queued or running (several: queued,running)
  --name N, --transport T, --priority P, --since ISO|DURATION
                           narrow the jobs, as for "switchyard jobs"`,
  purge: `Usage: switchyard purge --status S [--older-than DURATION] [--name N] [--json]
       switchyard purge --older-than DURATION [--name N] [--json]

Deletes finished jobs with their stages and tasks, in small batches (metrics keep their totals).
A status or an age is required, so no purge deletes every job by accident.

  --status S               succeeded, failed or cancelled (several: succeeded,cancelled)
  --older-than DURATION    only jobs finished longer ago than this (7d, 12h, 30m); default: any time
  --name N                 only jobs of this name`,
};

/** Milliseconds of `7d`, `12h`, `30m`, `45s`, `500ms`, `2w`; undefined if `text` is not one. */
function duration(text: string): number | undefined {
  try {
    return parseDuration(text, 'duration');
  } catch {
    return undefined;
  }
}

function statusList(command: OperationCommand, value: string): JobStatus[] | string {
  const allowed = STATUSES[command];
  const list = value.split(',').map((s) => s.trim());
  if (list.some((s) => !allowed.includes(s as JobStatus)))
    return `--status of "${command}" must be ${allowed.join(', ')} (several comma-separated)`;
  return [...new Set(list as JobStatus[])];
}

/** The job filter of `--status`, `--name`, `--transport`, `--since`; a string is a usage error. */
function jobFilter(
  command: OperationCommand,
  flags: OperationFlags,
  now: Date,
): ListJobsFilter | string {
  const filter: ListJobsFilter = {};
  if (flags.status !== undefined) {
    const status = statusList(command, flags.status);
    if (typeof status === 'string') return status;
    filter.status = status;
  }
  if (flags.name !== undefined) {
    if (flags.name.length === 0) return '--name must not be empty';
    filter.name = flags.name;
  }
  const transports = flags.transport ?? [];
  if (transports.length > 1) return `--transport may be given once for "${command}"`;
  if (transports[0] !== undefined) filter.transport = transports[0];
  if (flags.priority !== undefined) {
    if (!isPriority(flags.priority)) return '--priority must be high, normal or low';
    filter.priority = flags.priority;
  }
  if (flags.since !== undefined) {
    const ago = duration(flags.since);
    const at = ago !== undefined ? new Date(now.getTime() - ago) : parseInstant(flags.since);
    if (!at || Number.isNaN(at.getTime()))
      return '--since must be an ISO 8601 time (2026-01-31T12:00:00Z) or a duration (24h, 7d)';
    filter.createdAfter = at;
  }
  return filter;
}

/**
 * Checks an operation's arguments before anything is opened.
 * @returns what to run, or the usage error to report.
 */
export function parseOperation(
  command: OperationCommand,
  args: string[],
  flags: OperationFlags,
  now = new Date(),
): Operation | string {
  if (args.length > 1) return `unexpected argument "${args[1]}"`;
  const jobId = args[0];
  if (command === 'jobs' || command === 'purge') {
    if (jobId !== undefined) return `unexpected argument "${jobId}"`;
  }
  if (command === 'purge') {
    const olderThan = flags['older-than'];
    if (flags.status === undefined && olderThan === undefined)
      return 'purge needs --status or --older-than (a purge without one would delete every finished job)';
    let finishedBefore = now;
    if (olderThan !== undefined) {
      const ago = duration(olderThan);
      if (ago === undefined) return '--older-than must be a duration such as 7d, 12h or 30m';
      finishedBefore = new Date(now.getTime() - ago);
      if (Number.isNaN(finishedBefore.getTime())) return '--older-than is too long';
    }
    const filter = jobFilter(command, { status: flags.status, name: flags.name }, now);
    if (typeof filter === 'string') return filter;
    return {
      kind: 'purge',
      filter: {
        finishedBefore,
        ...(filter.status ? { status: filter.status } : {}),
        ...(filter.name !== undefined ? { name: filter.name } : {}),
      },
    };
  }
  const filter = jobFilter(command, flags, now);
  if (typeof filter === 'string') return filter;
  if (command === 'jobs') {
    if (flags.limit !== undefined) {
      if (
        !/^\d{1,3}$/.test(flags.limit) ||
        Number(flags.limit) < 1 ||
        Number(flags.limit) > MAX_PAGE
      )
        return `--limit must be an integer from 1 to ${MAX_PAGE}`;
      filter.limit = Number(flags.limit);
    }
    if (flags.cursor !== undefined) {
      if (flags.cursor.length === 0) return '--cursor must be a cursor a previous page printed';
      filter.cursor = flags.cursor;
    }
    return { kind: 'list', filter };
  }
  const filtered = Object.keys(filter).length > 0;
  if (jobId !== undefined) {
    if (filtered)
      return `"${command} <jobId>" takes no filter: --status, --name, --transport and --since select jobs for "${command}" without a job id`;
    if (command === 'cancel') return { kind: 'cancel', jobId };
    const options: RetryOptions = {};
    if (flags.stage !== undefined)
      options.stage = /^\d{1,6}$/.test(flags.stage) ? Number(flags.stage) : flags.stage;
    if (flags.task !== undefined) {
      if (flags.task.some((t) => t.length === 0)) return '--task must be a task id';
      options.taskIds = flags.task;
    }
    return { kind: 'retry', jobId, options };
  }
  if (flags.stage !== undefined || flags.task !== undefined)
    return '--stage and --task apply to "retry <jobId>", not to a retry by filter';
  if (!filtered)
    return `"${command}" needs <jobId> or a filter (--status, --name, --transport, --since): it never acts on every job`;
  return command === 'cancel' ? { kind: 'cancelJobs', filter } : { kind: 'retryJobs', filter };
}

/** What an operation printed, and whether it did what was asked (false: exit 1). */
export interface OperationOutcome {
  output: string;
  ok: boolean;
}

/**
 * Runs a checked operation.
 * @throws SwitchyardError `JOB_NOT_FOUND` for an unknown job, `INVALID_INPUT` for a stage or
 *   task the job does not have
 */
export async function runOperation(
  yard: Switchyard,
  op: Operation,
  json: boolean,
): Promise<OperationOutcome> {
  switch (op.kind) {
    case 'list': {
      const page = await yard.listJobs(op.filter);
      return { output: json ? JSON.stringify(page) : await jobsTable(yard, page), ok: true };
    }
    case 'retry': {
      const job = await yard.store.getJob(op.jobId);
      if (!job) return notFound(op.jobId);
      if (typeof op.options.stage === 'number' && op.options.stage >= job.stageCount)
        return invalidStage(op.jobId, job.stageCount);
      const result = await yard.retry(op.jobId, op.options);
      const ok = result.retried > 0;
      const text = ok
        ? `retried ${result.retried} task(s) of ${op.jobId}; the job is ${result.status} again`
        : `nothing to retry: job ${op.jobId} ${whyNotRetried(result.status)}`;
      return { output: json ? JSON.stringify(result) : text, ok };
    }
    case 'retryJobs': {
      const result = await yard.retryJobs(op.filter);
      return {
        output: json
          ? JSON.stringify(result)
          : `retried ${result.retried} task(s) in ${result.jobs} job(s)`,
        ok: true,
      };
    }
    case 'cancel': {
      const job = await yard.store.getJob(op.jobId);
      if (!job) return notFound(op.jobId);
      const cancelled = await yard.cancel(op.jobId);
      const status = (await yard.store.getJob(op.jobId))?.status ?? job.status;
      const text = cancelled
        ? `cancelled ${op.jobId}`
        : `not cancelled: job ${op.jobId} is already ${status}`;
      return {
        output: json ? JSON.stringify({ jobId: op.jobId, cancelled, status }) : text,
        ok: cancelled,
      };
    }
    case 'cancelJobs': {
      const result = await yard.cancelJobs(op.filter);
      return {
        output: json ? JSON.stringify(result) : `cancelled ${result.cancelled} job(s)`,
        ok: true,
      };
    }
    case 'purge': {
      const result = await yard.purge(op.filter);
      return {
        output: json
          ? JSON.stringify(result)
          : `purged ${result.jobs} job(s) and ${result.tasks} task(s)`,
        ok: true,
      };
    }
  }
}

function notFound(jobId: string): never {
  throw new SwitchyardError('JOB_NOT_FOUND', `job ${jobId} not found`);
}

function invalidStage(jobId: string, stageCount: number): never {
  const message = `job ${jobId} has ${stageCount} stage(s), numbered from 0`;
  throw new SwitchyardError('INVALID_INPUT', `--stage: ${message}`, {
    issues: [{ path: '--stage', message }],
  });
}

function whyNotRetried(status: JobStatus): string {
  if (status === 'cancelled') return 'is cancelled (a cancelled job is not retried)';
  if (status === 'scheduled' || status === 'queued') return 'has not started';
  if (status === 'running')
    return 'is running: until it finishes only failed tasks of its current stage re-run, and it has none';
  return 'has no failed task there';
}

/** The page as a table with each job's progress, and the cursor of the next page. */
async function jobsTable(yard: Switchyard, page: JobPage): Promise<string> {
  if (page.jobs.length === 0) return 'no jobs';
  const views = await Promise.all(page.jobs.map((j) => yard.getJob(j.id)));
  const rows = page.jobs.map((j, i) => [
    j.id,
    j.name,
    j.status,
    j.transport,
    j.createdAt.toISOString().replace('T', ' ').slice(0, 19),
    progress(views[i]),
  ]);
  const lines = [table(['id', 'name', 'status', 'path', 'created', 'progress'], rows)];
  if (page.nextCursor) lines.push('', `next page: --cursor ${page.nextCursor}`);
  return lines.join('\n');
}

/** `stage 2/3 reply 40/100 (2 failed)`: the current (or last started) stage's tasks. */
function progress(view: JobView | undefined): string {
  if (!view) return '-';
  const stage = view.currentStage
    ? view.stages[view.currentStage.index]
    : view.stages.findLast((s) => s.status !== 'waiting');
  if (!stage) return '-';
  const done = stage.succeeded + stage.failed;
  const failed = stage.failed > 0 ? ` (${stage.failed} failed)` : '';
  return `stage ${stage.index + 1}/${view.stages.length} ${stage.name} ${done}/${stage.total}${stage.sealed ? '' : '+'}${failed}`;
}
