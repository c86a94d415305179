/** Which filters a `listJobs` call has: each present one adds its own condition. */
export interface ListJobsShape {
  /** `one`: a single status (`status = $n`, served by the status index); `many`: `= ANY`. */
  status?: 'one' | 'many';
  name?: boolean;
  transport?: boolean;
  priority?: boolean;
  createdAfter?: boolean;
  createdBefore?: boolean;
  cursor?: boolean;
}

/**
 * Keyset page of jobs, newest first, for one combination of filters: only the conditions given
 * appear (a catch-all `$n IS NULL OR …` would hide from the planner which index serves the
 * filter). Values go as parameters in this order: status, name, transport, priority, created after,
 * created before, cursor (microseconds since the epoch, id), then the limit. The cursor keeps
 * microseconds, the precision of `timestamptz`, so no two jobs of one millisecond are skipped.
 */
export function listJobs(s: string, shape: ListJobsShape): string {
  const where: string[] = [];
  let n = 0;
  const next = () => `$${++n}`;
  if (shape.status === 'one') where.push(`status = ${next()}::text`);
  if (shape.status === 'many') where.push(`status = ANY (${next()}::text[])`);
  if (shape.name) where.push(`name = ${next()}::text`);
  if (shape.transport) where.push(`transport = ${next()}::text`);
  // NULL is `normal` (see migration 12).
  if (shape.priority) where.push(`coalesce(priority, 'normal') = ${next()}::text`);
  if (shape.createdAfter) where.push(`created_at >= ${next()}::timestamptz`);
  if (shape.createdBefore) where.push(`created_at < ${next()}::timestamptz`);
  if (shape.cursor) {
    const us = next();
    const id = next();
    where.push(
      `(created_at, id) < ('epoch'::timestamptz + ${us}::bigint * interval '1 microsecond', ${id}::text)`,
    );
  }
  return `
SELECT id, name, status, transport, priority, current_stage, error, created_at, started_at, finished_at,
       (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_us
  FROM ${s}.jobs
 ${where.length > 0 ? `WHERE ${where.join('\n   AND ')}` : ''}
 ORDER BY created_at DESC, id DESC
 LIMIT ${next()}::int`;
}
