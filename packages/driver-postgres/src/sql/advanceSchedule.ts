/**
 * Compare-and-set: moves schedule $1's cursor to $2 only if it is later than the stored one
 * (creating the row), recording the fire $3 and its job $4 when given; a row only when applied.
 */
export const advanceSchedule = (s: string) => `
INSERT INTO ${s}.schedules AS sc (name, cursor_at, last_fire_at, last_job_id)
VALUES ($1, $2::timestamptz, $3::timestamptz, $4)
ON CONFLICT (name) DO UPDATE
   SET cursor_at = EXCLUDED.cursor_at,
       last_fire_at = coalesce(EXCLUDED.last_fire_at, sc.last_fire_at),
       last_job_id = coalesce(EXCLUDED.last_job_id, sc.last_job_id),
       updated_at = now()
 WHERE sc.cursor_at IS NULL OR sc.cursor_at < EXCLUDED.cursor_at
RETURNING name`;
