/**
 * A task attempt: the handler's run, its `ctx`, its timeout, and its abort on shutdown or when its
 * job is cancelled.
 */
import type { TaskContext } from '../../define.js';
import {
  type ErrorInfo,
  MalformedMessageError,
  SerializationError,
  TaskTimeoutError,
  toErrorInfo,
} from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { CancelWatch } from '../../operations/cancel-watch.js';
import { asJson } from '../../util/json.js';

const resultField = (taskId: string) => `result of task ${taskId}`;

/** What a handler's `ctx` says of its attempt, and how it can be stopped. */
export interface HandlerRun {
  jobId: string;
  taskId: string;
  stage: number;
  index: number;
  attempt: number;
  logger: Logger;
  timeoutMs: number | undefined;
  shutdown: AbortGroup;
  /** Aborts the attempt when its job is cancelled (registered only if the handler reads `signal`). */
  cancels?: CancelWatch;
}

/**
 * How an attempt ended: its result, or its error and why it ended. `cancelled`: the handler failed
 * after its job's cancel aborted its signal (the cancel, not the handler, decides the task's end).
 */
export type HandlerOutcome =
  | { ok: true; result: unknown }
  | {
      ok: false;
      error: ErrorInfo;
      timedOut: boolean;
      shutdown: boolean;
      permanent: boolean;
      cancelled: boolean;
    };

/**
 * Runs one attempt of a task's handler: its timeout aborts `ctx.signal` and ends the attempt, the
 * worker's shutdown and its job's cancel abort it too (the attempt then ends when the handler
 * returns: it keeps its slot until then), and its result is checked to be JSON.
 */
export async function runHandler(
  task: { handler: (input: unknown, ctx: TaskContext) => unknown },
  input: unknown,
  run: HandlerRun,
): Promise<HandlerOutcome> {
  const ctx = new HandlerContext(run);
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  try {
    let result: unknown;
    if (run.timeoutMs === undefined) {
      result = await task.handler(input, ctx);
    } else {
      result = await Promise.race([
        Promise.resolve().then(() => task.handler(input, ctx)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            timedOut = true;
            const err = new TaskTimeoutError(run.taskId, run.timeoutMs!);
            HandlerContext.abort(ctx, err);
            reject(err);
          }, run.timeoutMs);
        }),
      ]);
    }
    try {
      return {
        ok: true,
        result: asJson(result === undefined ? null : result, resultField, run.taskId),
      };
    } catch (err) {
      return {
        ok: false,
        error: toErrorInfo(err),
        timedOut: false,
        shutdown: false,
        permanent: err instanceof SerializationError,
        cancelled: false,
      };
    }
  } catch (err) {
    // A cancel that came first decides, even if the handler then ran past its timeout.
    const cancelled = HandlerContext.cancelled(ctx);
    return {
      ok: false,
      error: toErrorInfo(err),
      timedOut,
      shutdown: !timedOut && !cancelled && run.shutdown.signal.aborted,
      permanent: err instanceof MalformedMessageError,
      cancelled,
    };
  } finally {
    if (timer) clearTimeout(timer);
    HandlerContext.release(ctx);
  }
}

/**
 * A handler's `ctx`. Its AbortController, its place in the worker's shutdown group and its
 * registration with the cancel watch are made only when the handler reads `signal`: most handlers
 * never do (and one that does not cannot observe an abort), and a controller, a closure and a
 * group entry per task were a large share of the engine's allocations. The abort state lives in
 * private fields, so a handler sees nothing but {@link TaskContext}.
 */
class HandlerContext implements TaskContext {
  readonly jobId: string;
  readonly taskId: string;
  readonly stage: number;
  readonly index: number;
  readonly attempt: number;
  readonly logger: Logger;
  readonly #group: AbortGroup;
  readonly #cancels: CancelWatch | undefined;
  #controller: AbortController | undefined;
  #aborted = false;
  #cancelled = false;
  #reason: unknown;
  #joined = false;
  #released = false;
  #untrack: (() => void) | undefined;

  constructor(run: HandlerRun) {
    this.jobId = run.jobId;
    this.taskId = run.taskId;
    this.stage = run.stage;
    this.index = run.index;
    this.attempt = run.attempt;
    this.logger = run.logger;
    this.#group = run.shutdown;
    this.#cancels = run.cancels;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      const group = this.#group;
      if (!this.#aborted && group.signal.aborted) HandlerContext.abort(this, group.signal.reason);
      if (this.#aborted) this.#controller.abort(this.#reason);
      else if (!this.#released) {
        // (A signal first read after the attempt ended joins nothing: nothing would release it.)
        group.add(this);
        this.#joined = true;
        this.#untrack = this.#cancels?.track(this.jobId, {
          abort: (reason) => HandlerContext.cancel(this, reason),
        });
      }
    }
    return this.#controller.signal;
  }

  /** Aborts the attempt because its job was cancelled, unless it was aborted already. */
  static cancel(ctx: HandlerContext, reason: unknown): void {
    if (ctx.#aborted) return;
    ctx.#cancelled = true;
    HandlerContext.abort(ctx, reason);
  }

  /** Whether the attempt was aborted by its job's cancel (the first reason). */
  static cancelled(ctx: HandlerContext): boolean {
    return ctx.#cancelled;
  }

  /** Aborts the attempt (a timeout, the worker shutting down); the first reason wins. */
  static abort(ctx: HandlerContext, reason: unknown): void {
    if (ctx.#aborted) return;
    ctx.#aborted = true;
    ctx.#reason = reason;
    ctx.#controller?.abort(reason);
  }

  /** The attempt is over: leave the shutdown group and the cancel watch. */
  static release(ctx: HandlerContext): void {
    ctx.#released = true;
    if (ctx.#joined) ctx.#group.delete(ctx);
    ctx.#untrack?.();
  }
}

/** Aborts every running handler of one worker that asked for a signal, through a single listener. */
export class AbortGroup {
  private readonly members = new Set<HandlerContext>();

  constructor(readonly signal: AbortSignal) {
    signal.addEventListener(
      'abort',
      () => {
        for (const ctx of this.members) HandlerContext.abort(ctx, signal.reason);
      },
      { once: true },
    );
  }

  add(ctx: HandlerContext): void {
    this.members.add(ctx);
  }

  delete(ctx: HandlerContext): void {
    this.members.delete(ctx);
  }
}
