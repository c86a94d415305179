/**
 * A task's wait for a handler slot, when its message holds more tasks than its worker has free
 * slots (a pack): the task starts when its turn comes, unless the worker stopped or its job was
 * cancelled meanwhile.
 */
import type { CancelWatch } from '../../operations/cancel-watch.js';
import type { TaskSettlement } from '../inbound.js';
import type { HeldMessage } from '../worker/slots.js';
import type { AbortGroup } from './handler.js';

export interface TurnWait {
  /** The message whose slot the task waits for. */
  held: HeldMessage;
  jobId: string;
  /** The attempt the claim counted. */
  attempt: number;
  /** The worker's shutdown. */
  group: AbortGroup;
  cancels: CancelWatch;
}

/**
 * Waits for `turn`; `undefined` when the task may start, otherwise its settlement: a worker that
 * stopped releases it unstarted (its attempt not counted), a cancelled job's task is done.
 */
export async function waitForTurn(
  turn: Promise<void>,
  wait: TurnWait,
): Promise<TaskSettlement | undefined> {
  const waiting = new CancelledWhileWaiting();
  const untrack = wait.cancels.track(wait.jobId, waiting);
  try {
    await turn;
  } finally {
    untrack();
  }
  if (wait.group.signal.aborted) {
    wait.held.handlerEnded();
    return {
      action: 'retry',
      delayMs: 0,
      reason: 'worker shutting down',
      attempt: wait.attempt - 1,
    };
  }
  if (waiting.cancelled) {
    wait.held.handlerEnded();
    return { action: 'complete' };
  }
  return undefined;
}

/** A task waiting for a slot, as the cancel watch sees it: it notes its job's cancel. */
class CancelledWhileWaiting {
  cancelled = false;
  abort(): void {
    this.cancelled = true;
  }
}
