/**
 * Cancels up to $1 open jobs past their deadline, recording the error $2 (DEADLINE_EXCEEDED),
 * and in the same statement their non-terminal tasks; returns the jobs' ids.
 */
export const expireJobs = (s: string) => `
WITH job AS (
  UPDATE ${s}.jobs j
     SET status = 'cancelled', error = $2::json, finished_at = now(), updated_at = now()
    FROM (SELECT id FROM ${s}.jobs
           WHERE deadline_at IS NOT NULL AND deadline_at <= now()
             AND status IN ('scheduled', 'queued', 'running')
           ORDER BY deadline_at
           LIMIT $1::int
             FOR UPDATE SKIP LOCKED) due
   WHERE j.id = due.id AND j.status IN ('scheduled', 'queued', 'running')
  RETURNING j.id
), tasks AS (
  UPDATE ${s}.tasks t
     SET status = 'cancelled', finished_at = now(), updated_at = now()
    FROM job
   WHERE t.job_id = job.id AND t.status IN ('pending', 'running')
)
SELECT id FROM job`;
