import type { JobRecord, StageRecord, StageWaiting } from '../store.js';
import type { AnyJob } from './api.js';
import type { JobView, StageView } from './types.js';

/**
 * A job and its stages as `getJob` reports them: counts and timings, never per-task data. With
 * `waiting` (an open job with a flow-limited task), each such stage says how many tasks wait.
 */
export function toJobView(
  job: JobRecord,
  stages: StageRecord[],
  def: AnyJob | undefined,
  waiting?: readonly StageWaiting[],
): JobView {
  const views: StageView[] = [];
  for (let i = 0; i < job.stageCount; i++) {
    const s = stages[i];
    const name = s?.name ?? def?.stages[i]?.name ?? `stage-${i}`;
    const task = def?.stages[i]?.task;
    const waits =
      waiting && (task?.concurrency || task?.rateLimit)
        ? waitingOf(waiting.find((w) => w.stage === i))
        : undefined;
    if (!s) {
      views.push({
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
      });
      continue;
    }
    const total = s.total ?? s.created;
    const running = Math.max(0, Math.min(s.running, total - s.succeeded - s.failed));
    const windowed = s.released !== null && s.status !== 'complete';
    views.push({
      index: i,
      name,
      status: s.status,
      total,
      sealed: s.total !== null,
      pending: Math.max(0, total - s.succeeded - s.failed - running),
      running,
      succeeded: s.succeeded,
      failed: s.failed,
      ...(waits ? { waiting: waits } : {}),
      ...(windowed ? { waitingForWindow: Math.max(0, s.created - (s.released ?? 0)) } : {}),
      startedAt: s.startedAt,
      ...(s.completedAt
        ? {
            completedAt: s.completedAt,
            durationMs: s.completedAt.getTime() - s.startedAt.getTime(),
          }
        : {}),
    });
  }
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

function waitingOf(w: StageWaiting | undefined): { concurrency: number; rateLimit: number } {
  return { concurrency: w?.concurrency ?? 0, rateLimit: w?.rateLimit ?? 0 };
}
