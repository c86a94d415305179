/**
 * Dead-letter replay that re-runs what it replays: before a task message goes back to its queue,
 * its failed task is re-opened (as `retry` does), so the worker runs it instead of dropping it
 * as terminal. A letter that cannot be re-run is refused and stays dead-lettered.
 * @module
 */
import { decodeEnvelope } from '../envelope.js';
import { taskId } from '../ids.js';
import type { Store } from '../store.js';
import type { DeadLetter, DeadLetterCapability, QueueKind } from '../transport.js';

/**
 * The `accept` decision of a replay: which letters may go back. A task (or pack) message goes
 * back when each of its tasks is open or re-opened now; a stage message when its job is still
 * open. Malformed messages, tasks that succeeded or were cancelled, and unknown jobs are refused.
 */
export async function acceptForReplay(
  store: Pick<Store, 'getJob' | 'getTask' | 'reopenTasks'>,
  letters: readonly DeadLetter[],
): Promise<boolean[]> {
  const plans = letters.map((letter) => plan(letter));
  // Stage messages are judged on the jobs as they were before this batch re-opened anything.
  const stageVerdicts = await Promise.all(
    plans.map(async (p) => {
      if (p?.kind !== 'stage') return false;
      const job = await store.getJob(p.jobId);
      return job?.status === 'queued' || job?.status === 'running';
    }),
  );
  // Failed tasks to re-open, per job and stage: one store call each.
  const toReopen = new Map<string, { jobId: string; stage: number; taskIds: Set<string> }>();
  const statusOf = new Map<string, string | undefined>();
  for (const p of plans) {
    if (p?.kind !== 'tasks') continue;
    for (const id of p.taskIds) {
      if (!statusOf.has(id)) statusOf.set(id, (await store.getTask(id))?.status);
    }
    // A pack with a task that succeeded, was cancelled or is unknown would run again as a whole:
    // refused, and none of its tasks re-opened.
    if (!p.taskIds.every((id) => REPLAYABLE.has(statusOf.get(id) ?? ''))) continue;
    for (const id of p.taskIds) {
      if (statusOf.get(id) !== 'failed') continue;
      const key = `${p.jobId}\u0000${p.stage}`;
      const group = toReopen.get(key) ?? { jobId: p.jobId, stage: p.stage, taskIds: new Set() };
      group.taskIds.add(id);
      toReopen.set(key, group);
    }
  }
  for (const group of toReopen.values()) {
    const reopened = await store
      .reopenTasks({ jobId: group.jobId, taskIds: [...group.taskIds] })
      .catch(() => ({ taskIds: [] as string[] }));
    for (const id of reopened.taskIds) statusOf.set(id, 'pending');
  }
  return plans.map((p, i) => {
    if (p?.kind !== 'tasks') return stageVerdicts[i] === true;
    return p.taskIds.every((id) => {
      const status = statusOf.get(id);
      return status === 'pending' || status === 'running';
    });
  });
}

/** Replays a queue's dead letters, re-opening their tasks first (see {@link acceptForReplay}). */
export function replayDeadLetters(
  deps: {
    store: Pick<Store, 'getJob' | 'getTask' | 'reopenTasks'>;
    transport: DeadLetterCapability;
  },
  queue: QueueKind,
  options: { limit?: number; ids?: readonly string[] } = {},
): Promise<number> {
  return deps.transport.replayDeadLetters(queue, {
    ...options,
    accept: (letters) => acceptForReplay(deps.store, letters),
  });
}

const REPLAYABLE = new Set(['failed', 'pending', 'running']);

type Plan =
  | { kind: 'stage'; jobId: string }
  | { kind: 'tasks'; jobId: string; stage: number; taskIds: string[] }
  | undefined;

function plan(letter: DeadLetter): Plan {
  try {
    const envelope = decodeEnvelope(letter.body);
    if (envelope.kind === 'stage') return { kind: 'stage', jobId: envelope.jobId };
    if (envelope.kind === 'task')
      return {
        kind: 'tasks',
        jobId: envelope.jobId,
        stage: envelope.stage,
        taskIds: [envelope.taskId],
      };
    return {
      kind: 'tasks',
      jobId: envelope.jobId,
      stage: envelope.stage,
      taskIds: envelope.tasks.map((t) => taskId(envelope.jobId, envelope.stage, t.index)),
    };
  } catch {
    return undefined;
  }
}
