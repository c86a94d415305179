/** What an application asks of its jobs: their views, results, completion, metrics, readiness. */
import { setTimeout as sleep } from 'node:timers/promises';
import { withCost } from '../cost.js';
import type { TaskResult } from '../define.js';
import { SwitchyardError, toErrorInfo } from '../errors.js';
import { FINISHED_STATUSES } from '../operations/statuses.js';
import type { EngineContext } from './context.js';
import { DEFAULTS } from './defaults.js';
import { stageResults } from './stages/results.js';
import type { JobView, MetricsReport, WaitForOptions } from './types.js';
import { toJobView } from './views.js';

export async function getJob(ctx: EngineContext, jobId: string): Promise<JobView | undefined> {
  const job = await ctx.store.getJob(jobId);
  if (!job) return undefined;
  const def = ctx.directory.definition(job.name);
  // Tasks waiting for flow control: counted for open jobs with a limited task only.
  const limited = def?.stages.some((s) => s.task.concurrency || s.task.rateLimit) === true;
  const [stages, waiting] = await Promise.all([
    ctx.store.getStages(jobId),
    limited && !FINISHED_STATUSES.has(job.status) ? ctx.store.waitingTasks?.(jobId) : undefined,
  ]);
  return toJobView({ job, stages, def, waiting });
}

export async function* results(
  ctx: EngineContext,
  jobId: string,
  stage?: string | number,
): AsyncIterable<TaskResult> {
  const job = await ctx.store.getJob(jobId);
  if (!job) throw new SwitchyardError('JOB_NOT_FOUND', `job ${jobId} not found`);
  if (stage === undefined) {
    for (let i = 0; i < job.stageCount; i++) yield* stageResults(ctx.store, jobId, i);
    return;
  }
  yield* stageResults(ctx.store, jobId, ctx.directory.stageIndex(job, stage));
}

export async function waitFor(
  ctx: EngineContext,
  jobId: string,
  options: WaitForOptions = {},
): Promise<JobView> {
  const interval = options.pollIntervalMs ?? DEFAULTS.waitFor.pollIntervalMs;
  for (;;) {
    if (options.signal?.aborted)
      throw new SwitchyardError('ABORTED', `waitFor(${jobId}) aborted`, {
        cause: options.signal.reason,
      });
    // Taken before the read: a job this process ends meanwhile wakes the wait at once; one ended
    // elsewhere is seen at the next poll.
    const ended = ctx.directory.nextEnding(jobId);
    try {
      const view = await getJob(ctx, jobId);
      if (!view) throw new SwitchyardError('JOB_NOT_FOUND', `job ${jobId} not found`);
      options.onProgress?.(view);
      if (FINISHED_STATUSES.has(view.status)) return view;
      const poll = new AbortController();
      const stop = () => poll.abort();
      options.signal?.addEventListener('abort', stop, { once: true });
      if (options.signal?.aborted) stop();
      await Promise.race([
        sleep(interval, undefined, { signal: poll.signal }).catch(() => {}),
        ended.promise,
      ]);
      poll.abort();
      options.signal?.removeEventListener('abort', stop);
    } finally {
      ended.cancel();
    }
  }
}

export async function metrics(ctx: EngineContext): Promise<MetricsReport> {
  const transports = new Map([...ctx.settings.transports].map(([name, t]) => [name, t.transport]));
  const paths = withCost(await ctx.store.metrics(), transports, {
    executions: (name) => ctx.telemetry.settledOn(name),
  });
  return { transports: paths, generatedAt: new Date() };
}

export interface Readiness {
  ok: boolean;
  checks: Record<string, { ok: boolean; error?: string }>;
}

/** Checks the store and every transport that can be pinged. */
export async function ready(ctx: EngineContext): Promise<Readiness> {
  const checks: Readiness['checks'] = {};
  const probe = async (name: string, fn: (() => Promise<void>) | undefined) => {
    try {
      await fn?.();
      checks[name] = { ok: true };
    } catch (err) {
      checks[name] = { ok: false, error: toErrorInfo(err).message };
    }
  };
  await Promise.all([
    probe('store', ctx.store.ping?.bind(ctx.store)),
    ...[...ctx.settings.transports.values()].map((t) =>
      probe(`transport:${t.name}`, t.transport.ping?.bind(t.transport)),
    ),
  ]);
  return { ok: Object.values(checks).every((c) => c.ok), checks };
}
