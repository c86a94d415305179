import type { JobRecord, StageRecord, StageWaiting } from '../store.js';
import type { AnyJob } from './api.js';
import type { JobView, StageView } from './types.js';

/** What a job's view is made of. */
export interface JobViewSource {
  job: JobRecord;
  stages: StageRecord[];
  /** The job's definition, when this Switchyard has it: stage names fall back to it. */
  def?: AnyJob | undefined;
  /** Tasks waiting for a flow limit, per stage (an open job with a flow-limited task). */
  waiting?: readonly StageWaiting[] | undefined;
}

/**
 * A job and its stages as `getJob` reports them: counts and timings, never per-task data. With
 * `waiting`, each flow-limited stage says how many tasks wait.
 */
export function toJobView(source: JobViewSource): JobView {
  const { job } = source;
  const views: StageView[] = [];
  for (let i = 0; i < job.stageCount; i++) views.push(stageView(source, i));
  const current = job.currentStage >= 0 ? views[job.currentStage] : undefined;
  return {
    id: job.id,
    name: job.name,
    status: job.status,
    transport: job.transport,
    priority: job.priority ?? 'normal',
    params: job.params,
    ...(current ? { currentStage: { index: current.index, name: current.name } } : {}),
    stages: views,
    createdAt: job.createdAt,
    ...(job.runAt ? { runAt: job.runAt } : {}),
    ...(job.deadlineAt ? { deadlineAt: job.deadlineAt } : {}),
    ...(job.startedAt ? { startedAt: job.startedAt } : {}),
    ...(job.finishedAt
      ? {
          finishedAt: job.finishedAt,
          durationMs: job.finishedAt.getTime() - job.createdAt.getTime(),
        }
      : {}),
    ...(job.result !== undefined ? { result: job.result } : {}),
    ...(job.error ? { error: job.error } : {}),
  };
}

/** Stage `i` of the job: a stage not started yet (no record) is `waiting` with no tasks. */
function stageView({ job, stages, def, waiting }: JobViewSource, i: number): StageView {
  const s = stages[i];
  const name = s?.name ?? def?.stages[i]?.name ?? `stage-${i}`;
  const task = def?.stages[i]?.task;
  const waits =
    waiting && (task?.concurrency || task?.rateLimit)
      ? waitingOf(waiting.find((w) => w.stage === i))
      : undefined;
  if (!s)
    return {
      index: i,
      name,
      status: 'waiting',
      total: 0,
      sealed: false,
      pending: 0,
      running: 0,
      succeeded: 0,
      failed: 0,
      ...(waits ? { waiting: waits } : {}),
    };
  const total = s.total ?? s.created;
  const open = Math.max(0, total - s.succeeded - s.failed);
  // A cancel ends every open task of the job in the same statement: none is pending or running
  // after it, whatever the stage's running count (best effort, never rewound by the cancel) says.
  const stage = { index: i, name, status: s.status, total, sealed: s.total !== null };
  if (job.status === 'cancelled')
    return {
      ...stage,
      pending: 0,
      running: 0,
      succeeded: s.succeeded,
      failed: s.failed,
      cancelled: open,
      ...timings(s),
    };
  const running = Math.max(0, Math.min(s.running, open));
  const windowed = s.released !== null && s.status !== 'complete';
  return {
    ...stage,
    pending: open - running,
    running,
    succeeded: s.succeeded,
    failed: s.failed,
    ...(waits ? { waiting: waits } : {}),
    ...(windowed ? { waitingForWindow: Math.max(0, s.created - (s.released ?? 0)) } : {}),
    ...timings(s),
  };
}

/** A started stage's start, and its end and duration once complete. */
function timings(s: StageRecord): Pick<StageView, 'startedAt' | 'completedAt' | 'durationMs'> {
  return {
    startedAt: s.startedAt,
    ...(s.completedAt
      ? {
          completedAt: s.completedAt,
          durationMs: s.completedAt.getTime() - s.startedAt.getTime(),
        }
      : {}),
  };
}

function waitingOf(w: StageWaiting | undefined): { concurrency: number; rateLimit: number } {
  return { concurrency: w?.concurrency ?? 0, rateLimit: w?.rateLimit ?? 0 };
}
