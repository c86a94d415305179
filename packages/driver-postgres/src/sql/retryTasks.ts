/**
 * Puts failed attempts back to pending (error kept, timeouts counted, the attempt recorded), one
 * statement per batch, locking task rows then stage rows, each in key order (README, "Lock order").
 * Job ids go once each ($1), retries name theirs by position (job_no).
 */
export const retryTasks = (s: string) => `
WITH input AS (
  SELECT DISTINCT ON (j.job_id, i.stage, i.idx) j.job_id, i.*
    FROM ROWS FROM (unnest($2::int[]), unnest($3::int[]), unnest($4::int[]),
                    json_array_elements($5::json), unnest($6::boolean[]), unnest($7::int[]),
                    unnest($8::float8[]))
         AS i (job_no, stage, idx, error, timed_out, attempt, started_ms)
    JOIN unnest($1::text[]) WITH ORDINALITY AS j (job_id, no) ON j.no = i.job_no
), task_locks AS (
  -- Lock order (README): task rows in key order, before any stage row. The locked rows carry
  -- their input, so the UPDATE below joins them to tasks by key alone.
  SELECT i.*
    FROM ${s}.tasks t
    JOIN input i ON (t.job_id, t.stage, t.idx) = (i.job_id, i.stage, i.idx)
   WHERE t.status IN ('pending', 'running')
   ORDER BY t.job_id, t.stage, t.idx
     FOR NO KEY UPDATE OF t
), retried AS (
  UPDATE ${s}.tasks t
     SET status = 'pending',
         error = CASE WHEN json_typeof(i.error) <> 'null' THEN i.error END,
         timeouts = t.timeouts + i.timed_out::int,
         attempts = greatest(t.attempts, i.attempt),
         started_at = coalesce(t.started_at, to_timestamp(i.started_ms / 1000), now()),
         updated_at = now()
    FROM task_locks i
   WHERE (t.job_id, t.stage, t.idx) = (i.job_id, i.stage, i.idx)
     AND t.status IN ('pending', 'running')
  RETURNING t.job_id, t.stage
), stage_locks AS (
  -- Lock order (README): stage rows in key order, after every task row (the count needs all of them).
  SELECT st.job_id, st.idx, r.n
    FROM ${s}.stages st
    JOIN (SELECT job_id, stage, count(*)::int AS n FROM retried GROUP BY job_id, stage) r
      ON (st.job_id, st.idx) = (r.job_id, r.stage)
   ORDER BY st.job_id, st.idx
     FOR NO KEY UPDATE OF st
)
UPDATE ${s}.stages st
   SET running = greatest(st.running - r.n, 0)
  FROM stage_locks r
 WHERE (st.job_id, st.idx) = (r.job_id, r.idx)`;
