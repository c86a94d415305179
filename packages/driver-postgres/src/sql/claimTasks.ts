/**
 * Starts one attempt of each runnable task of the batch, in one statement. Returns one row per
 * input position (`ord`): the outcome, and for `run` the attempt number and, when asked
 * (`with_input`), the stored input. Nothing else: a worker claims every task it runs, so every
 * column returned here is read and parsed once per task.
 * `o.status` is the pre-update status, used only for the best-effort running counter.
 */
export const claimTasks = (s: string) => `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::boolean[]) WITH ORDINALITY
         AS i (job_id, stage, idx, with_input, ord)
), claimed AS (
  UPDATE ${s}.tasks t
     SET status = 'running',
         attempts = t.attempts + 1,
         started_at = coalesce(t.started_at, now()),
         updated_at = now()
    FROM (SELECT DISTINCT job_id, stage, idx FROM input) i
    JOIN ${s}.tasks o ON (o.job_id, o.stage, o.idx) = (i.job_id, i.stage, i.idx)
    JOIN ${s}.jobs j ON j.id = i.job_id AND j.status = 'running'
   WHERE (t.job_id, t.stage, t.idx) = (i.job_id, i.stage, i.idx)
     AND t.status IN ('pending', 'running')
  RETURNING t.job_id, t.stage, t.idx, t.attempts, t.input, o.status AS old_status
), running AS (
  UPDATE ${s}.stages st
     SET running = st.running + c.n
    FROM (SELECT job_id, stage, count(*)::int AS n FROM claimed WHERE old_status <> 'running' GROUP BY job_id, stage) c
   WHERE st.job_id = c.job_id AND st.idx = c.stage
)
SELECT i.ord, 'run' AS outcome, c.attempts, CASE WHEN i.with_input THEN c.input END AS input
  FROM input i JOIN claimed c ON (c.job_id, c.stage, c.idx) = (i.job_id, i.stage, i.idx)
UNION ALL
SELECT i.ord,
       CASE WHEN t.job_id IS NULL THEN 'missing'
            WHEN t.status IN ('succeeded', 'failed', 'cancelled') OR j.status = 'running' THEN 'terminal'
            ELSE 'job-inactive' END,
       NULL, NULL
  FROM input i
  LEFT JOIN ${s}.tasks t ON (t.job_id, t.stage, t.idx) = (i.job_id, i.stage, i.idx)
  LEFT JOIN ${s}.jobs j ON j.id = i.job_id
 WHERE NOT EXISTS (SELECT 1 FROM claimed c WHERE (c.job_id, c.stage, c.idx) = (i.job_id, i.stage, i.idx))`;
