/**
 * One chunk of a fan-out in one statement: unnest the arrays, skip existing (job, stage, index)
 * rows, and add the number actually inserted to stages.created. Nothing is inserted unless the
 * stage has started.
 */
export const insertTasks = (s: string) => `
WITH stage AS (
  SELECT 1 FROM ${s}.stages WHERE job_id = $1 AND idx = $2::int
), inserted AS (
  INSERT INTO ${s}.tasks (job_id, stage, idx, input, batch_id)
  SELECT $1, $2::int, t.idx, t.input, t.batch_id
    FROM ROWS FROM (unnest($3::int[]), json_array_elements($4::json), unnest($5::text[]))
         AS t (idx, input, batch_id)
   WHERE EXISTS (SELECT 1 FROM stage)
  ON CONFLICT DO NOTHING
  RETURNING 1
), bumped AS (
  UPDATE ${s}.stages
     SET created = created + (SELECT count(*) FROM inserted)
   WHERE job_id = $1 AND idx = $2::int AND EXISTS (SELECT 1 FROM inserted)
)
SELECT (SELECT count(*) FROM inserted)::int AS inserted, EXISTS (SELECT 1 FROM stage) AS stage_exists`;
