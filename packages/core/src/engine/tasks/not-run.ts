/**
 * The settlement of a task message whose claim says the task must not run: dead-lettered when
 * the task (or its job) does not exist; otherwise acknowledged.
 */
import type { TaskEnvelope } from '../../envelope.js';
import type { Store, TaskClaim } from '../../store.js';
import type { TaskSettlement } from '../inbound.js';
import type { StageAdvance } from '../stages/advance.js';

/** What deciding needs: the store to tell a missing task from a missing job, and the advance. */
export interface NotRunDeps {
  store: Pick<Store, 'getJob'>;
  advance: Pick<StageAdvance, 'recheck'>;
}

export async function notRun(
  envelope: TaskEnvelope,
  outcome: Exclude<TaskClaim['outcome'], 'run'>,
  deps: NotRunDeps,
): Promise<TaskSettlement> {
  switch (outcome) {
    case 'missing': {
      const job = await deps.store.getJob(envelope.jobId);
      return job
        ? {
            action: 'deadLetter',
            reason: 'TaskNotFound',
            description: `task ${envelope.taskId} does not exist in job ${envelope.jobId}`,
          }
        : {
            action: 'deadLetter',
            reason: 'JobNotFound',
            description: `job ${envelope.jobId} does not exist`,
          };
    }
    case 'terminal':
      // A duplicate or a redelivery after a crash: the result is recorded already. Make sure the
      // stage's advance was not lost with the crash (cheap and idempotent).
      await deps.advance.recheck(envelope.jobId, envelope.stage);
      return { action: 'complete' };
    case 'job-inactive':
      return { action: 'complete' };
  }
}
