import { describe, expect, it } from 'vitest';
import type { TaskContext } from '../../src/define.js';
import {
  AbortGroup,
  type HandlerOutcome,
  type HandlerRun,
  runHandler,
} from '../../src/engine/tasks/handler.js';
import { silentLogger } from '../../src/logger.js';
import { CancelWatch } from '../../src/operations/cancel-watch.js';
import type { Store } from '../../src/store.js';

/** A watch over a store that never reports a cancel by itself, counting its checks. */
function quietWatch(): { watch: CancelWatch; checks: () => number } {
  let checks = 0;
  const store: Pick<Store, 'cancelledJobs'> = {
    cancelledJobs: async () => {
      checks++;
      return [];
    },
  };
  return { watch: new CancelWatch({ store, intervalMs: 10 }), checks: () => checks };
}

/** A handler that waits for its signal and throws its reason. */
const awaitAbort = (_: unknown, ctx: TaskContext) =>
  new Promise((_, reject) =>
    ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }),
  );

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

/** Runs `handler` as a task definition's. */
function runWith(
  handler: (input: unknown, ctx: TaskContext) => unknown,
  input: unknown,
  run: HandlerRun,
): Promise<HandlerOutcome> {
  return runHandler({ handler }, input, run);
}

describe('runHandler', () => {
  it('returns the handler’s result, undefined stored as null, and gives it the attempt’s ctx', async () => {
    let ctx: TaskContext | undefined;
    expect(
      await runWith(
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
    expect(await runWith(async () => undefined, 0, attempt())).toEqual({
      ok: true,
      result: null,
    });
  });

  it('reports a throwing handler’s error as a failure to retry', async () => {
    const outcome = await runWith(
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
      cancelled: false,
    });
  });

  it('reports a thrown value that cannot be read as a failure, never as a crash of the attempt', async () => {
    const unprintable = Object.assign(Object.create(null), {
      toJSON() {
        throw new Error('not JSON either');
      },
    });
    const hostileMessage = new RangeError('hidden');
    Object.defineProperty(hostileMessage, 'message', {
      get() {
        throw new Error('no message');
      },
    });
    for (const thrown of [unprintable, hostileMessage]) {
      const outcome = await runWith(
        () => {
          throw thrown;
        },
        0,
        attempt(),
      );
      expect(outcome).toMatchObject({ ok: false, timedOut: false, permanent: false });
      expect(outcome.ok || outcome.error).toEqual({
        name: expect.any(String),
        message: expect.stringContaining('cannot be read'),
      });
    }
  });

  it('reports a result JSON cannot carry as a permanent failure', async () => {
    const outcome = await runWith(() => ({ n: 1n }), 0, attempt());
    expect(outcome).toMatchObject({
      ok: false,
      permanent: true,
      error: { code: 'NOT_SERIALIZABLE' },
    });
  });

  it('ends the attempt at its timeout, aborting ctx.signal with TASK_TIMEOUT', async () => {
    let signal: AbortSignal | undefined;
    const outcome = await runWith(
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
    const outcome = runWith(
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
    await runWith(
      (_, ctx) => {
        aborted = ctx.signal.aborted;
      },
      0,
      attempt({ shutdown: new AbortGroup(worker.signal) }),
    );
    expect(aborted).toBe(true);
  });

  it('aborts a handler reading its signal when its job is cancelled: JOB_CANCELLED, not a failure to retry', async () => {
    const { watch } = quietWatch();
    const outcome = runWith(awaitAbort, 0, attempt({ cancels: watch }));
    await new Promise((r) => setTimeout(r, 5));
    await watch.abort('other-job');
    await watch.abort('job');
    expect(await outcome).toMatchObject({
      ok: false,
      cancelled: true,
      shutdown: false,
      timedOut: false,
      error: { code: 'JOB_CANCELLED', message: 'job job was cancelled' },
    });
    await watch.close();
  });

  it('registers with the cancel watch only a handler that reads its signal, until it ends', async () => {
    const quiet = quietWatch();
    await runWith(
      () => new Promise((r) => setTimeout(r, 60)),
      0,
      attempt({ cancels: quiet.watch }),
    );
    // Never registered: the watch never armed its check.
    expect(quiet.checks()).toBe(0);

    const reading = quietWatch();
    let kept: TaskContext | undefined;
    await runWith(
      async (_, ctx) => {
        kept = ctx;
        void ctx.signal;
        while (reading.checks() === 0) await new Promise((r) => setTimeout(r, 5));
      },
      0,
      attempt({ cancels: reading.watch }),
    );
    // Ended: the watch let it go, and a signal read afterwards joins nothing.
    const after = reading.checks();
    await new Promise((r) => setTimeout(r, 60));
    expect(reading.checks()).toBe(after);
    await reading.watch.abort('job');
    expect(kept!.signal.aborted).toBe(false);
    await quiet.watch.close();
    await reading.watch.close();
  });

  it('keeps the first reason: a timeout before the cancel stays a timeout', async () => {
    const { watch } = quietWatch();
    let signal: AbortSignal | undefined;
    const outcome = await runWith(
      async (_, ctx) => {
        signal = ctx.signal;
        await new Promise((r) => setTimeout(r, 40));
        await watch.abort('job');
        return 'late';
      },
      0,
      attempt({ cancels: watch, timeoutMs: 10 }),
    );
    expect(outcome).toMatchObject({ ok: false, timedOut: true, cancelled: false });
    expect(signal!.reason).toMatchObject({ code: 'TASK_TIMEOUT' });
    await watch.close();
  });

  it('aborts at once a handler of a job the watch knows cancelled', async () => {
    const { watch } = quietWatch();
    let finish!: () => void;
    const finished = new Promise<void>((r) => {
      finish = r;
    });
    // The first handler holds the job's entry: it ends only when told.
    const first = runWith(
      async (_, ctx) => {
        void ctx.signal;
        await finished;
        throw ctx.signal.reason;
      },
      0,
      attempt({ cancels: watch }),
    );
    await new Promise((r) => setTimeout(r, 5));
    await watch.abort('job');
    // A second handler of the job reads its signal while the first still runs.
    const second = await runWith(
      (_, ctx) => {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        return 'ran';
      },
      0,
      attempt({ cancels: watch, taskId: 'job.1.3' }),
    );
    expect(second).toMatchObject({ ok: false, cancelled: true, error: { code: 'JOB_CANCELLED' } });
    finish();
    expect(await first).toMatchObject({ cancelled: true });
    await watch.close();
  });
});
