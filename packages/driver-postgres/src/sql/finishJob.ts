/** Compare-and-set on a non-terminal status: one caller finishes the job. */
export const finishJob = (s: string) => `
UPDATE ${s}.jobs
   SET status = $2, result = $3::json, error = $4::json, finished_at = now(), updated_at = now()
 WHERE id = $1 AND status IN ('queued', 'running')
RETURNING id`;
