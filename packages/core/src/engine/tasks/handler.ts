/** A task attempt: the handler's run, its `ctx`, its timeout and its abort on shutdown. */
import type { TaskContext } from '../../define.js';
import {
  type ErrorInfo,
  MalformedMessageError,
  SerializationError,
  TaskTimeoutError,
  toErrorInfo,
} from '../../errors.js';
import type { Logger } from '../../logger.js';
import { asJson } from '../../util/json.js';

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
}

/** How an attempt ended: its result, or its error and why it ended. */
export type HandlerOutcome =
  | { ok: true; result: unknown }
  | { ok: false; error: ErrorInfo; timedOut: boolean; shutdown: boolean; permanent: boolean };

/**
 * Runs one attempt of a task's handler: its timeout aborts `ctx.signal` and ends the attempt, the
 * worker's shutdown aborts it too, and its result is checked to be JSON.
 */
export async function runHandler(
  handler: (input: unknown, ctx: TaskContext) => unknown,
  input: unknown,
  run: HandlerRun,
): Promise<HandlerOutcome> {
  const ctx = new HandlerContext(run);
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  try {
    let result: unknown;
    if (run.timeoutMs === undefined) {
      result = await handler(input, ctx);
    } else {
      result = await Promise.race([
        Promise.resolve().then(() => handler(input, ctx)),
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
        result: asJson(result === undefined ? null : result, `result of task ${run.taskId}`),
      };
    } catch (err) {
      return {
        ok: false,
        error: toErrorInfo(err),
        timedOut: false,
        shutdown: false,
        permanent: err instanceof SerializationError,
      };
    }
  } catch (err) {
    return {
      ok: false,
      error: toErrorInfo(err),
      timedOut,
      shutdown: !timedOut && run.shutdown.signal.aborted,
      permanent: err instanceof MalformedMessageError,
    };
  } finally {
    if (timer) clearTimeout(timer);
    HandlerContext.release(ctx);
  }
}

/**
 * A handler's `ctx`. Its AbortController, and its place in the worker's shutdown group, are made
 * only when the handler reads `signal`: most handlers never do, and a controller, a closure and a
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
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  #joined = false;

  constructor(run: HandlerRun) {
    this.jobId = run.jobId;
    this.taskId = run.taskId;
    this.stage = run.stage;
    this.index = run.index;
    this.attempt = run.attempt;
    this.logger = run.logger;
    this.#group = run.shutdown;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      const group = this.#group;
      if (!this.#aborted && group.signal.aborted) HandlerContext.abort(this, group.signal.reason);
      if (this.#aborted) this.#controller.abort(this.#reason);
      else {
        group.add(this);
        this.#joined = true;
      }
    }
    return this.#controller.signal;
  }

  /** Aborts the attempt (a timeout, the worker shutting down); the first reason wins. */
  static abort(ctx: HandlerContext, reason: unknown): void {
    if (ctx.#aborted) return;
    ctx.#aborted = true;
    ctx.#reason = reason;
    ctx.#controller?.abort(reason);
  }

  /** The attempt is over: leave the shutdown group. */
  static release(ctx: HandlerContext): void {
    if (ctx.#joined) ctx.#group.delete(ctx);
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
