import { JOB_COLUMNS } from '../rows.js';

/**
 * Stage advance as a compare-and-set on jobs.current_stage: only the caller that finds the job at
 * `stage - 1` (and not terminal) moves it, and only that caller creates the stage row. Row locking
 * on the job makes the others re-check and return no row.
 */
export const startStage = (s: string) => `
WITH advanced AS (
  UPDATE ${s}.jobs
     SET current_stage = $2::int,
         status = 'running',
         started_at = coalesce(started_at, now()),
         updated_at = now()
   WHERE id = $1
     AND current_stage = $2::int - 1
     AND status IN ('queued', 'running')
     AND $2::int < stage_count
  RETURNING ${JOB_COLUMNS}
), stage AS (
  INSERT INTO ${s}.stages (job_id, idx, name, started_at)
  SELECT id, $2::int, $3, now() FROM advanced
  ON CONFLICT (job_id, idx) DO NOTHING
)
SELECT ${JOB_COLUMNS} FROM advanced`;
