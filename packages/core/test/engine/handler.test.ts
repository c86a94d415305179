import { describe, expect, it } from 'vitest';
import type { TaskContext } from '../../src/define.js';
import { AbortGroup, type HandlerRun, runHandler } from '../../src/engine/tasks/handler.js';
import { silentLogger } from '../../src/logger.js';

function attempt(overrides: Partial<HandlerRun> = {}): HandlerRun {
  return {
    jobId: 'job',
    taskId: 'job.1.2',
    stage: 1,
    index: 2,
    attempt: 3,
    logger: silentLogger,
    timeoutMs: undefined,
    shutdown: new AbortGroup(new AbortController().signal),
    ...overrides,
  };
}

describe('runHandler', () => {
  it('returns the handler’s result, undefined stored as null, and gives it the attempt’s ctx', async () => {
    let ctx: TaskContext | undefined;
    expect(
      await runHandler(
        (input, c) => {
          ctx = c;
          return { got: input };
        },
        5,
        attempt(),
      ),
    ).toEqual({ ok: true, result: { got: 5 } });
    expect(ctx).toMatchObject({ jobId: 'job', taskId: 'job.1.2', stage: 1, index: 2, attempt: 3 });
    expect(ctx!.signal.aborted).toBe(false);
    expect(await runHandler(async () => undefined, 0, attempt())).toEqual({
      ok: true,
      result: null,
    });
  });

  it('reports a throwing handler’s error as a failure to retry', async () => {
    const outcome = await runHandler(
      () => {
        throw new TypeError('bad thing');
      },
      0,
      attempt(),
    );
    expect(outcome).toEqual({
      ok: false,
      error: { name: 'TypeError', message: 'bad thing' },
      timedOut: false,
      shutdown: false,
      permanent: false,
    });
  });

  it('reports a result JSON cannot carry as a permanent failure', async () => {
    const outcome = await runHandler(() => ({ n: 1n }), 0, attempt());
    expect(outcome).toMatchObject({
      ok: false,
      permanent: true,
      error: { code: 'NOT_SERIALIZABLE' },
    });
  });

  it('ends the attempt at its timeout, aborting ctx.signal with TASK_TIMEOUT', async () => {
    let signal: AbortSignal | undefined;
    const outcome = await runHandler(
      (_, ctx) => {
        signal = ctx.signal;
        return new Promise(() => {});
      },
      0,
      attempt({ timeoutMs: 20 }),
    );
    expect(outcome).toMatchObject({
      ok: false,
      timedOut: true,
      shutdown: false,
      permanent: false,
      error: { code: 'TASK_TIMEOUT', name: 'TaskTimeoutError' },
    });
    expect(signal!.aborted).toBe(true);
    expect(signal!.reason).toMatchObject({ code: 'TASK_TIMEOUT' });
  });

  it('aborts a running handler when its worker shuts down, reporting it as a shutdown', async () => {
    const worker = new AbortController();
    const shutdown = new AbortGroup(worker.signal);
    const outcome = runHandler(
      (_, ctx) =>
        new Promise((_, reject) =>
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
        ),
      0,
      attempt({ shutdown }),
    );
    await new Promise((r) => setTimeout(r, 5));
    worker.abort(new Error('stopping'));
    expect(await outcome).toMatchObject({
      ok: false,
      shutdown: true,
      timedOut: false,
      error: { message: 'stopping' },
    });
  });

  it('gives a handler that starts after shutdown an aborted signal', async () => {
    const worker = new AbortController();
    worker.abort(new Error('stopped'));
    let aborted: boolean | undefined;
    await runHandler(
      (_, ctx) => {
        aborted = ctx.signal.aborted;
      },
      0,
      attempt({ shutdown: new AbortGroup(worker.signal) }),
    );
    expect(aborted).toBe(true);
  });
});
