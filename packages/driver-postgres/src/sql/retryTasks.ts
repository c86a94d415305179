/**
 * Puts failed attempts back to pending (error kept, timeouts counted, the attempt recorded), one
 * statement per batch. Job ids go once each ($1), retries name theirs by position (job_no).
 */
export const retryTasks = (s: string) => `
WITH input AS (
  SELECT DISTINCT ON (j.job_id, i.stage, i.idx) j.job_id, i.*
    FROM ROWS FROM (unnest($2::int[]), unnest($3::int[]), unnest($4::int[]),
                    json_array_elements($5::json), unnest($6::boolean[]), unnest($7::int[]),
                    unnest($8::float8[]))
         AS i (job_no, stage, idx, error, timed_out, attempt, started_ms)
    JOIN unnest($1::text[]) WITH ORDINALITY AS j (job_id, no) ON j.no = i.job_no
), retried AS (
  UPDATE ${s}.tasks t
     SET status = 'pending',
         error = CASE WHEN json_typeof(i.error) <> 'null' THEN i.error END,
         timeouts = t.timeouts + i.timed_out::int,
         attempts = greatest(t.attempts, i.attempt),
         started_at = coalesce(t.started_at, to_timestamp(i.started_ms / 1000), now()),
         updated_at = now()
    FROM input i
   WHERE (t.job_id, t.stage, t.idx) = (i.job_id, i.stage, i.idx)
     AND t.status IN ('pending', 'running')
  RETURNING t.job_id, t.stage
)
UPDATE ${s}.stages st
   SET running = greatest(st.running - r.n, 0)
  FROM (SELECT job_id, stage, count(*)::int AS n FROM retried GROUP BY job_id, stage) r
 WHERE st.job_id = r.job_id AND st.idx = r.stage`;
