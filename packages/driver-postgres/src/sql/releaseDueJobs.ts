/** Moves up to $1 delayed jobs that are due from `scheduled` to `queued`; returns them. */
export const releaseDueJobs = (s: string) => `
UPDATE ${s}.jobs j
   SET status = 'queued', updated_at = now()
  FROM (SELECT id FROM ${s}.jobs
         WHERE status = 'scheduled' AND run_at <= now()
         ORDER BY run_at
         LIMIT $1::int
           FOR UPDATE SKIP LOCKED) due
 WHERE j.id = due.id AND j.status = 'scheduled'
RETURNING j.id, j.transport`;
