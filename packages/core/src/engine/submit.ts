/**
 * `submit()`: validate the params, create the job (idempotent: the job id is derived from the job
 * name and the canonical params, or from the idempotency key) and send its first stage message.
 */
import { SwitchyardError, ValidationError } from '../errors.js';
import { deriveJobId } from '../ids.js';
import { canonicalJson } from '../util/json.js';
import type { EngineContext } from './context.js';
import { DEFAULTS } from './defaults.js';
import { sendStageMessage } from './outbox.js';
import type { SubmitOptions, SubmitResult } from './types.js';
import { validate } from './validate.js';

export async function submit(
  ctx: EngineContext,
  jobName: string,
  params: unknown,
  options: SubmitOptions = {},
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
  const validated = def.params ? await validate(def.params, params, 'params') : params;
  const canonical = canonicalJson(validated, 'params');
  const stored = validated === undefined ? null : JSON.parse(canonical);
  await ctx.init();
  const { job, created } = await store.createJob({
    id: deriveJobId(def.name, canonical, key),
    name: def.name,
    params: stored,
    transport,
    stageCount: def.stages.length,
    ...(key === undefined ? {} : { idempotencyKey: key }),
  });
  // A resubmitted job that never started re-sends its first stage message: cheap, idempotent,
  // and it heals a submit that crashed between the commit and the send.
  if (job.status === 'queued') await sendStageMessage(ctx.transportOf(job.transport), job.id, 0);
  return { jobId: job.id, created, status: job.status, transport: job.transport };
}
