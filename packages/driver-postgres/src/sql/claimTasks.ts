/**
 * Starts one attempt of each runnable task of the batch, in one statement. Refs with `admit_only`
 * are only checked (a read, no row written): the first delivery of a fan-out's own message, which
 * is most of them. Returns one row per input position (`ord`): the outcome, and for `run` the
 * attempt number and, when asked (`with_input`), the stored input. Nothing else: a worker claims
 * every task it runs, so every column returned here is read and parsed once per task.
 * Job ids go once each ($1), refs name theirs by position (job_no): a batch is mostly one job.
 * Every ref that may start adds one to its stage's best-effort running count (claimed refs only
 * when the task was not running already). Rows are locked in the driver's lock order (README,
 * "Lock order"): task rows in key order, then stage rows in key order.
 */
export const claimTasks = (s: string) => `
WITH input AS (
  SELECT j.job_id, i.*
    FROM unnest($2::int[], $3::int[], $4::int[], $5::boolean[], $6::boolean[], $7::int[])
         WITH ORDINALITY AS i (job_no, stage, idx, with_input, admit_only, min_attempt, ord)
    JOIN unnest($1::text[]) WITH ORDINALITY AS j (job_id, no) ON j.no = i.job_no
), looked AS (
  SELECT i.*, t.job_id IS NOT NULL AS found, t.status AS task_status, t.attempts, t.input,
         coalesce(t.status IN ('pending', 'running') AND j.status = 'running', false) AS runnable
    FROM input i
    LEFT JOIN ${s}.tasks t ON (t.job_id, t.stage, t.idx) = (i.job_id, i.stage, i.idx)
    LEFT JOIN ${s}.jobs j ON j.id = i.job_id
), task_locks AS (
  -- Lock order (README): task rows in key order, before any stage row. The locked rows carry
  -- what the UPDATE below needs, so it joins them to tasks by key alone.
  SELECT l.*
    FROM ${s}.tasks t
    JOIN (SELECT job_id, stage, idx, max(min_attempt) AS min_attempt, min(task_status) AS old_status
            FROM looked WHERE runnable AND NOT admit_only GROUP BY job_id, stage, idx) l
      ON (t.job_id, t.stage, t.idx) = (l.job_id, l.stage, l.idx)
   WHERE t.status IN ('pending', 'running')
   ORDER BY t.job_id, t.stage, t.idx
     FOR NO KEY UPDATE OF t
), claimed AS (
  UPDATE ${s}.tasks t
     SET status = 'running',
         attempts = greatest(t.attempts + 1, l.min_attempt),
         started_at = coalesce(t.started_at, now()),
         updated_at = now()
    FROM task_locks l
   WHERE (t.job_id, t.stage, t.idx) = (l.job_id, l.stage, l.idx)
     AND t.status IN ('pending', 'running')
  RETURNING t.job_id, t.stage, t.idx, t.attempts, l.old_status
), started AS (
  SELECT job_id, stage FROM claimed WHERE old_status <> 'running'
  UNION ALL
  SELECT job_id, stage FROM looked WHERE runnable AND admit_only
), stage_locks AS (
  -- Lock order (README): stage rows in key order, after every task row (the count needs all of them).
  SELECT st.job_id, st.idx, c.n
    FROM ${s}.stages st
    JOIN (SELECT job_id, stage, count(*)::int AS n FROM started GROUP BY job_id, stage) c
      ON (st.job_id, st.idx) = (c.job_id, c.stage)
   ORDER BY st.job_id, st.idx
     FOR NO KEY UPDATE OF st
), running AS (
  UPDATE ${s}.stages st
     SET running = st.running + k.n
    FROM stage_locks k
   WHERE (st.job_id, st.idx) = (k.job_id, k.idx)
)
SELECT l.ord,
       CASE WHEN c.idx IS NOT NULL OR (l.runnable AND l.admit_only) THEN 'run'
            WHEN NOT l.found THEN 'missing'
            -- Runnable when looked at, but a concurrent completion got there first.
            WHEN l.task_status IN ('succeeded', 'failed', 'cancelled') OR l.runnable THEN 'terminal'
            ELSE 'job-inactive' END AS outcome,
       coalesce(c.attempts, greatest(l.attempts + 1, l.min_attempt)) AS attempts,
       CASE WHEN l.with_input THEN l.input END AS input
  FROM looked l
  LEFT JOIN claimed c ON NOT l.admit_only AND (c.job_id, c.stage, c.idx) = (l.job_id, l.stage, l.idx)`;
