/**
 * Cancels a non-terminal job and, in the same statement, its non-terminal tasks: the job row first,
 * then the task rows in key order (README, "Lock order").
 */
export const cancelJob = (s: string) => `
WITH job AS (
  UPDATE ${s}.jobs
     SET status = 'cancelled', finished_at = now(), updated_at = now()
   WHERE id = $1 AND status IN ('scheduled', 'queued', 'running')
  RETURNING id
), task_locks AS (
  SELECT t.job_id, t.stage, t.idx
    FROM ${s}.tasks t
    JOIN job ON t.job_id = job.id
   WHERE t.status IN ('pending', 'running')
   ORDER BY t.job_id, t.stage, t.idx
     FOR NO KEY UPDATE OF t
), tasks AS (
  UPDATE ${s}.tasks t
     SET status = 'cancelled', finished_at = now(), updated_at = now()
    FROM task_locks k
   WHERE (t.job_id, t.stage, t.idx) = (k.job_id, k.stage, k.idx) AND t.status IN ('pending', 'running')
)
SELECT count(*)::int AS cancelled FROM job`;
