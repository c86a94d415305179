/**
 * Admits fan-outs' own packs at their first delivery, one row per pack, in one statement: a pack
 * is admitted when its job is running and its stage is not complete, and its task count is added
 * to the stage's running count in the same UPDATE (which locks the stage row, so a racing barrier
 * completing the stage is seen; stage rows are locked in key order, README "Lock order"). Nothing
 * about the tasks is read: that lookup per task was the
 * admission's whole cost. Returns one row, the admitted input positions (`ords`) as one array.
 */
export const admitPacks = (s: string) => `
WITH input AS (
  SELECT j.job_id, i.stage, i.tasks, i.ord
    FROM unnest($2::int[], $3::int[], $4::int[]) WITH ORDINALITY AS i (job_no, stage, tasks, ord)
    JOIN unnest($1::text[]) WITH ORDINALITY AS j (job_id, no) ON j.no = i.job_no
), stage_locks AS (
  -- Lock order (README): stage rows in key order.
  SELECT st.job_id, st.idx, c.tasks
    FROM ${s}.stages st
    JOIN (SELECT i.job_id, i.stage, sum(i.tasks)::int AS tasks
            FROM input i
            JOIN ${s}.jobs j ON j.id = i.job_id AND j.status = 'running'
           GROUP BY i.job_id, i.stage) c
      ON (st.job_id, st.idx) = (c.job_id, c.stage)
   WHERE st.status <> 'complete'
   ORDER BY st.job_id, st.idx
     FOR NO KEY UPDATE OF st
), admitted AS (
  UPDATE ${s}.stages st
     SET running = st.running + c.tasks
    FROM stage_locks c
   WHERE (st.job_id, st.idx) = (c.job_id, c.idx) AND st.status <> 'complete'
  RETURNING st.job_id, st.idx
)
SELECT coalesce(array_agg(i.ord::int), '{}') AS ords
  FROM input i
  JOIN admitted a ON a.job_id = i.job_id AND a.idx = i.stage`;
