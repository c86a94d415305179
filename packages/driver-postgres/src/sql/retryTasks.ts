/** Puts failed attempts back to pending (error kept, timeouts counted), one statement per batch. */
export const retryTasks = (s: string) => `
WITH input AS (
  SELECT DISTINCT ON (job_id, stage, idx) *
    FROM unnest($1::text[], $2::int[], $3::int[], $4::text[], $5::boolean[])
         AS i (job_id, stage, idx, error, timed_out)
), retried AS (
  UPDATE ${s}.tasks t
     SET status = 'pending',
         error = i.error::json,
         timeouts = t.timeouts + i.timed_out::int,
         updated_at = now()
    FROM input i
    JOIN ${s}.tasks o ON (o.job_id, o.stage, o.idx) = (i.job_id, i.stage, i.idx)
   WHERE (t.job_id, t.stage, t.idx) = (i.job_id, i.stage, i.idx)
     AND t.status IN ('pending', 'running')
  RETURNING t.job_id, t.stage, o.status AS old_status
)
UPDATE ${s}.stages st
   SET running = greatest(st.running - r.n, 0)
  FROM (SELECT job_id, stage, count(*)::int AS n FROM retried WHERE old_status = 'running' GROUP BY job_id, stage) r
 WHERE st.job_id = r.job_id AND st.idx = r.stage`;
