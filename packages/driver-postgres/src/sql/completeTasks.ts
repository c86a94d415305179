/**
 * The fan-in barrier for a whole batch, in one round trip:
 * 1. `done` moves each task to its terminal status only if it is not terminal yet (a concurrent
 *    completion of the same task re-checks the guard after the row lock, so it applies once);
 * 2. `tally` counts what this statement applied, per stage;
 * 3. `stage` adds it to the stage counters and, in the same UPDATE, flips a *sealed* stage whose
 *    terminal count reached its total to complete. The stage row lock serialises racing callers
 *    (and sealStage), each re-evaluating against the latest row, so the flip happens once, and
 *    `completed_now` (complete now, short of the total before our own increment) is true for
 *    exactly the statement that flipped it.
 * Rows are locked in the driver's lock order (README, "Lock order"): the task rows in key order
 * first, then the stage rows in key order, so concurrent barrier batches never wait in a cycle.
 * Job ids go once each ($1), outcomes name theirs by position (job_no).
 * Rows: one `applied` row with the input positions (`ords`) this statement moved to terminal (one
 * array, not a row per task: parsing rows was a measurable share of a worker's CPU), then one
 * `stage` row per stage this statement completed.
 */
export const completeTasks = (s: string) => `
WITH input AS (
  SELECT DISTINCT ON (j.job_id, i.stage, i.idx) j.job_id, i.*
    FROM ROWS FROM (unnest($2::int[]), unnest($3::int[]), unnest($4::int[]), unnest($5::text[]),
                    json_array_elements($6::json), json_array_elements($7::json),
                    unnest($8::boolean[]), unnest($9::int[]), unnest($10::float8[]))
         WITH ORDINALITY AS i (job_no, stage, idx, status, result, error, timed_out, attempt, started_ms, ord)
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
), done AS (
  UPDATE ${s}.tasks t
     SET status = i.status,
         result = CASE WHEN json_typeof(i.result) <> 'null' THEN i.result END,
         error = CASE WHEN json_typeof(i.error) <> 'null' THEN i.error END,
         timeouts = t.timeouts + i.timed_out::int,
         attempts = greatest(t.attempts, i.attempt),
         started_at = coalesce(t.started_at, to_timestamp(i.started_ms / 1000), now()),
         finished_at = now(),
         updated_at = now()
    FROM task_locks i
   WHERE (t.job_id, t.stage, t.idx) = (i.job_id, i.stage, i.idx)
     AND t.status IN ('pending', 'running')
  RETURNING t.job_id, t.stage, t.status, i.ord
), tally AS (
  SELECT job_id, stage,
         count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
         count(*) FILTER (WHERE status <> 'succeeded')::int AS failed
    FROM done
   GROUP BY job_id, stage
), stage_locks AS (
  -- Lock order (README): stage rows in key order, after every task row (the tally needs all of them).
  SELECT st.job_id, st.idx, c.succeeded, c.failed
    FROM ${s}.stages st
    JOIN tally c ON (st.job_id, st.idx) = (c.job_id, c.stage)
   ORDER BY st.job_id, st.idx
     FOR NO KEY UPDATE OF st
), stage AS (
  UPDATE ${s}.stages st
     SET succeeded = st.succeeded + c.succeeded,
         failed = st.failed + c.failed,
         -- A complete stage runs nothing: also clears what crashes or duplicates left counted.
         running = CASE WHEN st.status = 'sealed'
                         AND st.succeeded + st.failed + c.succeeded + c.failed >= st.total
                        THEN 0 ELSE greatest(st.running - c.succeeded - c.failed, 0) END,
         status = CASE WHEN st.status = 'sealed'
                        AND st.succeeded + st.failed + c.succeeded + c.failed >= st.total
                       THEN 'complete' ELSE st.status END,
         completed_at = CASE WHEN st.status = 'sealed'
                              AND st.succeeded + st.failed + c.succeeded + c.failed >= st.total
                             THEN now() ELSE st.completed_at END
    FROM stage_locks c
   WHERE (st.job_id, st.idx) = (c.job_id, c.idx)
  RETURNING st.job_id, st.idx, st.succeeded, st.failed, st.total,
            st.status = 'complete' AND st.succeeded + st.failed - c.succeeded - c.failed < st.total AS completed_now
)
SELECT 'applied' AS kind, NULL AS job_id, NULL::int AS stage,
       coalesce((SELECT array_agg(ord::int) FROM done), '{}') AS ords,
       NULL::int AS succeeded, NULL::int AS failed, NULL::int AS total
UNION ALL
SELECT 'stage', job_id, idx, NULL, succeeded, failed, total FROM stage WHERE completed_now`;
