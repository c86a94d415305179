/**
 * A task's wait for a handler slot, when its message holds more tasks than its worker has free
 * slots (a pack): the task starts when its turn comes, unless the worker stopped or its job was
 * cancelled meanwhile. A pack takes its tasks' turns one after another ({@link PackTurns}), so a
 * task waiting for its turn is only its place in the pack.
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

/** Why a pack's task may start, or must not: the worker stopped, or its job was cancelled. */
export type PackTurn = 'start' | 'stopped' | 'cancelled';

/**
 * The handler slots of a pack's tasks, taken in task order as slots come free. Nothing of a task
 * is made before its turn: its frames, claim record and telemetry exist only from its start, so
 * the thousands of tasks a worker prefetches stay the pack's entries, not live objects the young
 * generation's collections copy again and again.
 *
 * Once the worker stops, or the job is cancelled during a wait, every later task of the pack is
 * released unstarted, without waiting for a slot it would only give back.
 */
export class PackTurns {
  private readonly waiting = new CancelledWhileWaiting();
  private untrack: (() => void) | undefined;
  private stopped: Exclude<PackTurn, 'start'> | undefined;

  constructor(private readonly wait: Omit<TurnWait, 'attempt'>) {}

  /** Takes a slot for the pack's next task: `'start'` once it holds one, else why it holds none. */
  take(): PackTurn | Promise<PackTurn> {
    if (this.stopped) return this.stopped;
    // A stopping worker, or a job cancelled since the pack first waited, starts nothing more,
    // even on a free slot: the rest of the pack goes back unstarted.
    const why = this.why();
    if (why) {
      this.stopped = why;
      return why;
    }
    const turn = this.wait.held.handlerStarting(this.wait.jobId);
    if (!turn) return 'start';
    // Tracked from the first wait to the end of the pack: one registration, not one per task.
    this.untrack ??= this.wait.cancels.track(this.wait.jobId, this.waiting);
    return turn.then(() => this.taken());
  }

  /** The pack has taken all its turns. */
  end(): void {
    this.untrack?.();
    this.untrack = undefined;
  }

  /** Why no more of the pack may start, if so. */
  private why(): Exclude<PackTurn, 'start'> | undefined {
    if (this.wait.group.signal.aborted) return 'stopped';
    return this.waiting.cancelled ? 'cancelled' : undefined;
  }

  private taken(): PackTurn {
    const why = this.why();
    if (!why) return 'start';
    this.wait.held.handlerEnded();
    this.stopped = why;
    return why;
  }
}

/** A task waiting for a slot, as the cancel watch sees it: it notes its job's cancel. */
class CancelledWhileWaiting {
  cancelled = false;
  abort(): void {
    this.cancelled = true;
  }
}
