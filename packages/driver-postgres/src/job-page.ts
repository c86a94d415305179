/**
 * Rows and keyset cursors of `listJobs`.
 * @module
 */
import type { ErrorInfo, JobStatus, JobSummary } from '@switchyard/core';
import { isStorableInstant, ValidationError } from '@switchyard/core';

/** A `listJobs` row: the summary columns and the creation time in microseconds (as text). */
export interface JobSummaryRow {
  id: string;
  name: string;
  status: JobStatus;
  transport: string;
  priority: 'high' | 'low' | null;
  current_stage: number;
  error: ErrorInfo | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  created_us: string;
}

export function toJobSummary(r: JobSummaryRow): JobSummary {
  return {
    id: r.id,
    name: r.name,
    status: r.status,
    transport: r.transport,
    ...(r.priority ? { priority: r.priority } : {}),
    createdAt: r.created_at,
    ...(r.started_at ? { startedAt: r.started_at } : {}),
    ...(r.finished_at ? { finishedAt: r.finished_at } : {}),
    ...(r.current_stage >= 0 ? { currentStage: r.current_stage } : {}),
    ...(r.error ? { error: r.error } : {}),
  };
}

/** The cursor after `row`: its creation time to the microsecond and its id. */
export function encodeJobCursor(row: JobSummaryRow): string {
  return Buffer.from(`${row.created_us}:${row.id}`).toString('base64url');
}

/** @throws ValidationError naming `cursor` when it is not one `listJobs` returned. */
export function decodeJobCursor(cursor: string): { createdUs: string; id: string } {
  const match = /^(-?\d{1,19}):(.+)$/s.exec(Buffer.from(cursor, 'base64url').toString());
  // A cursor listJobs made holds a stored creation time and a job id: a time no job can have
  // (outside the years 0001-9999, which PostgreSQL would refuse) or an id with U+0000 is forged.
  const createdMs = match ? Number(match[1]) / 1000 : Number.NaN;
  if (!match || !isStorableInstant(createdMs) || match[2]!.includes('\u0000'))
    throw new ValidationError('[switchyard] [postgres] cursor is malformed', [
      { path: 'cursor', message: 'not a cursor from listJobs' },
    ]);
  return { createdUs: match[1]!, id: match[2]! };
}
