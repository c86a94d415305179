/**
 * Resets the reconciler's lost-message clock of non-terminal tasks and counts the re-send, locking
 * the task rows in key order (README, "Lock order").
 */
export const touchTasks = (s: string) => `
WITH task_locks AS (
  SELECT t.job_id, t.stage, t.idx
    FROM ${s}.tasks t
    JOIN unnest($1::text[], $2::int[], $3::int[]) AS i (job_id, stage, idx)
      ON (t.job_id, t.stage, t.idx) = (i.job_id, i.stage, i.idx)
   WHERE t.status IN ('pending', 'running')
   ORDER BY t.job_id, t.stage, t.idx
     FOR NO KEY UPDATE OF t
)
UPDATE ${s}.tasks t
   SET updated_at = now(), redrives = t.redrives + 1
  FROM task_locks k
 WHERE (t.job_id, t.stage, t.idx) = (k.job_id, k.stage, k.idx)
   AND t.status IN ('pending', 'running')`;
