/** Cancels a non-terminal job and, in the same statement, its non-terminal tasks. */
export const cancelJob = (s: string) => `
WITH job AS (
  UPDATE ${s}.jobs
     SET status = 'cancelled', finished_at = now(), updated_at = now()
   WHERE id = $1 AND status IN ('scheduled', 'queued', 'running')
  RETURNING id
), tasks AS (
  UPDATE ${s}.tasks t
     SET status = 'cancelled', finished_at = now(), updated_at = now()
    FROM job
   WHERE t.job_id = job.id AND t.status IN ('pending', 'running')
)
SELECT count(*)::int AS cancelled FROM job`;
