/**
 * `submit()`: validate the params, create the job (idempotent: the job id is derived from the job
 * name and the canonical params, or from the idempotency key) and send its first stage message.
 */
import { SwitchyardError, ValidationError } from '../errors.js';
import { deriveJobId } from '../ids.js';
import { INSTANT_RANGE, isStorableInstant } from '../operations/instant.js';
import { isPriority, type Priority } from '../priority.js';
import { submitSpan } from '../telemetry/steps.js';
import { traceFieldsOf } from '../telemetry/trace-context.js';
import { canonicalJson } from '../util/json.js';
import type { EngineContext } from './context.js';
import { DEFAULTS } from './defaults.js';
import { sendStageMessage } from './outbox.js';
import type { SubmitOptions, SubmitResult } from './types.js';
import { validate } from './validate.js';

/** What {@link submit} is asked: the public `submit()`'s three arguments. */
export interface SubmitRequest {
  jobName: string;
  params: unknown;
  options?: SubmitOptions | undefined;
}

export async function submit(
  ctx: EngineContext,
  { jobName, params, options = {} }: SubmitRequest,
): Promise<SubmitResult> {
  const { settings, store } = ctx;
  const def = settings.jobs.get(jobName);
  if (!def)
    throw new SwitchyardError(
      'UNKNOWN_JOB',
      `unknown job "${jobName}" (known: ${[...settings.jobs.keys()].join(', ') || 'none'})`,
    );
  const transport = options.transport ?? settings.defaultTransport;
  if (!settings.transports.has(transport))
    throw new SwitchyardError(
      'UNKNOWN_TRANSPORT',
      `unknown transport "${transport}" (configured: ${[...settings.transports.keys()].join(', ')})`,
    );
  const key = options.idempotencyKey;
  const maxKey = DEFAULTS.maxIdempotencyKeyLength;
  if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > maxKey)) {
    const message = `must be a string of 1-${maxKey} characters`;
    throw new ValidationError(`idempotencyKey ${message}`, [{ path: 'idempotencyKey', message }]);
  }
  // A lone surrogate has no UTF-8 form: hashed or stored, every one becomes U+FFFD, so two
  // different keys would name the same job.
  if (key !== undefined && LONE_SURROGATE.test(key)) {
    const message = 'must be well-formed Unicode (it has a lone surrogate)';
    throw new ValidationError(`idempotencyKey ${message}`, [{ path: 'idempotencyKey', message }]);
  }
  const priority = submitPriority(ctx, transport, options.priority);
  const timing = submitTiming(options, def.deadlineMs);
  const validated = def.params ? await validate(def.params, params, 'params') : params;
  const canonical = canonicalJson(validated, 'params');
  const stored = validated === undefined ? null : JSON.parse(canonical);
  await ctx.init();
  const id = deriveJobId(def.name, canonical, key);
  const traced = submitSpan(ctx.telemetry, { jobId: id, jobName: def.name, transport });
  return ctx.telemetry.inSpan(traced, async (span) => {
    const { job, created } = await store.createJob({
      id,
      name: def.name,
      params: stored,
      transport,
      stageCount: def.stages.length,
      ...(key === undefined ? {} : { idempotencyKey: key }),
      ...(priority === 'normal' ? {} : { priority }),
      ...timing,
    });
    if (created) ctx.telemetry.jobsStarted.add(1, ctx.telemetry.transport(transport).base);
    // A resubmitted job that never started re-sends its first stage message: cheap, idempotent,
    // and it heals a submit that crashed between the commit and the send.
    if (job.status === 'queued')
      await sendStageMessage(ctx.transportOf(job.transport), {
        jobId: job.id,
        stage: 0,
        trace: traceFieldsOf(span),
      });
    return { jobId: job.id, created, status: job.status, transport: job.transport };
  });
}

/** A UTF-16 code unit of a surrogate pair standing alone (with `u`, a whole pair never matches). */
const LONE_SURROGATE = /\p{Cs}/u;

/** Transports already warned that they have no lanes for a job's priority. */
const warnedLaneless = new WeakSet<object>();

/**
 * The job's priority; a transport without lanes runs it in its one lane, which is worth a warning
 * once (the job still runs, only not ahead of or behind others).
 * @throws {ValidationError} naming `priority`
 */
function submitPriority(ctx: EngineContext, transport: string, value: unknown): Priority {
  if (value === undefined) return 'normal';
  if (!isPriority(value)) {
    const message = "must be 'high', 'normal' or 'low'";
    throw new ValidationError(`priority ${message}`, [{ path: 'priority', message }]);
  }
  const target = ctx.transportOf(transport).transport;
  if (value !== 'normal' && !target.priorities && !warnedLaneless.has(target)) {
    warnedLaneless.add(target);
    ctx.logger.warn('the transport keeps no priority lanes: its jobs share one lane', {
      transport,
      priority: value,
    });
  }
  return value;
}

/**
 * A delayed job's `runAt` (only when in the future: a due one runs now) and its `deadlineAt`,
 * counted from when it is due.
 * @throws {ValidationError} naming `runAt`, `delayMs` or `deadlineMs`
 */
function submitTiming(
  options: SubmitOptions,
  defaultDeadlineMs: number | undefined,
): { runAt?: Date; deadlineAt?: Date } {
  const fail = (path: string, message: string): never => {
    throw new ValidationError(`${path} ${message}`, [{ path, message }]);
  };
  const { runAt, delayMs } = options;
  const deadlineMs = options.deadlineMs ?? defaultDeadlineMs;
  if (runAt !== undefined && delayMs !== undefined) fail('delayMs', 'cannot be given with runAt');
  if (runAt !== undefined && (!(runAt instanceof Date) || Number.isNaN(runAt.getTime())))
    fail('runAt', 'must be a valid Date');
  if (delayMs !== undefined && !(Number.isFinite(delayMs) && delayMs >= 0))
    fail('delayMs', 'must be a number of milliseconds >= 0');
  if (deadlineMs !== undefined && !(Number.isFinite(deadlineMs) && deadlineMs > 0))
    fail('deadlineMs', 'must be a number of milliseconds > 0');
  const now = Date.now();
  const due = runAt ? runAt.getTime() : now + (delayMs ?? 0);
  if (!isStorableInstant(due))
    fail(
      runAt ? 'runAt' : 'delayMs',
      `must make the job due between now and ${INSTANT_RANGE.last}`,
    );
  const deadlineAt = deadlineMs === undefined ? undefined : Math.max(due, now) + deadlineMs;
  if (deadlineAt !== undefined && !isStorableInstant(deadlineAt))
    fail('deadlineMs', `must end the job's time by ${INSTANT_RANGE.last}`);
  return {
    ...(due > now ? { runAt: new Date(due) } : {}),
    ...(deadlineAt === undefined ? {} : { deadlineAt: new Date(deadlineAt) }),
  };
}
