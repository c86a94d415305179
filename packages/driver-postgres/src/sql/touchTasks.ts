/** Resets the reconciler's lost-message clock of non-terminal tasks and counts the re-send. */
export const touchTasks = (s: string) => `
UPDATE ${s}.tasks t
   SET updated_at = now(), redrives = t.redrives + 1
  FROM unnest($1::text[], $2::int[], $3::int[]) AS i (job_id, stage, idx)
 WHERE (t.job_id, t.stage, t.idx) = (i.job_id, i.stage, i.idx)
   AND t.status IN ('pending', 'running')`;
