import { createHash } from 'node:crypto';

/** Deterministic task id: the same job, stage and index always name the same task. */
export function taskId(jobId: string, stage: number, index: number): string {
  return `${jobId}.${stage}.${index}`;
}

/** The index part of a {@link taskId} (NaN when `id` is not one). */
export function taskIndex(id: string): number {
  const suffix = id.slice(id.lastIndexOf('.') + 1);
  return /^\d+$/.test(suffix) ? Number(suffix) : Number.NaN;
}

/**
 * Deterministic job id from the job name and either the idempotency key or the canonical params,
 * so a resubmission finds the existing job.
 */
export function deriveJobId(
  jobName: string,
  canonicalParams: string,
  idempotencyKey?: string,
): string {
  const hash = createHash('sha256')
    .update(jobName)
    .update('\0')
    .update(idempotencyKey === undefined ? `p:${canonicalParams}` : `k:${idempotencyKey}`)
    .digest('base64url')
    .slice(0, 22);
  const slug = jobName.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40);
  return `${slug}-${hash}`;
}
