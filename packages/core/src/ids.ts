import { createHash } from 'node:crypto';

/** Deterministic task id: the same job, stage and index always name the same task. */
export function taskId(jobId: string, stage: number, index: number): string {
  return `${jobId}.${stage}.${index}`;
}

/** Splits a {@link taskId} into its job, stage and index; undefined if `id` is not one. */
export function parseTaskId(
  id: string,
): { jobId: string; stage: number; index: number } | undefined {
  // Parsed from the end without a regex: ids are parsed once per task claimed and completed.
  const last = id.lastIndexOf('.');
  const middle = last > 0 ? id.lastIndexOf('.', last - 1) : -1;
  if (middle < 1) return undefined;
  const stage = digits(id, middle + 1, last);
  const index = digits(id, last + 1, id.length);
  if (stage < 0 || index < 0) return undefined;
  return { jobId: id.slice(0, middle), stage, index };
}

/** The number written in `text[from, to)` with 1 to 9 decimal digits, else -1. */
function digits(text: string, from: number, to: number): number {
  if (to <= from || to - from > 9) return -1;
  let value = 0;
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
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
