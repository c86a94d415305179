import { JOB_COLUMNS } from '../rows.js';

/**
 * The statements of `reopenTasks`, run in one transaction in this order. Rows are locked job,
 * then stage, then tasks in key order, the order every statement of the store keeps.
 */

/** Locks the job: re-opens, finishes, cancels and purges of one job queue up here. */
export const reopenLockJob = (s: string) => `
SELECT ${JOB_COLUMNS} FROM ${s}.jobs WHERE id = $1 FOR UPDATE`;

/** The latest stage of job $1 with failed tasks. */
export const reopenLatestFailedStage = (s: string) => `
SELECT max(idx) AS idx FROM ${s}.stages WHERE job_id = $1 AND failed > 0`;

/**
 * Locks stage $2 of job $1 and counts its task rows: fewer rows than were created means a purge
 * is deleting the job, which then must not re-open.
 */
export const reopenLockStage = (s: string) => `
SELECT st.status, st.created,
       (SELECT count(*)::int FROM ${s}.tasks t WHERE t.job_id = $1 AND t.stage = $2::int) AS rows
  FROM ${s}.stages st
 WHERE st.job_id = $1 AND st.idx = $2::int
   FOR UPDATE OF st`;

/**
 * Deletes the stages after $2 (and with them, below, their tasks): they fan out afresh, so their
 * task-row offers and leases go too (a fresh fan-out offers its rows from index 0 again).
 */
export const reopenDropLaterStages = (s: string) => `
WITH offers AS (
  DELETE FROM ${s}.task_offers WHERE job_id = $1 AND stage > $2::int
), leases AS (
  DELETE FROM ${s}.task_leases WHERE job_id = $1 AND stage > $2::int
)
DELETE FROM ${s}.stages WHERE job_id = $1 AND idx > $2::int`;

export const reopenDropLaterTasks = (s: string) => `
DELETE FROM ${s}.tasks WHERE job_id = $1 AND stage > $2::int`;

/**
 * Puts the failed tasks of stage $2 (all, or the indexes in $3) back to pending with a fresh
 * attempt count; locked in index order first. Returns their indexes.
 */
export const reopenFailedTasks = (s: string) => `
WITH picked AS (
  SELECT job_id, stage, idx FROM ${s}.tasks
   WHERE job_id = $1 AND stage = $2::int AND status = 'failed'
     AND ($3::int[] IS NULL OR idx = ANY ($3::int[]))
   ORDER BY idx
     FOR UPDATE
)
UPDATE ${s}.tasks t
   SET status = 'pending', attempts = 0, timeouts = 0, redrives = 0, result = NULL, error = NULL,
       started_at = NULL, finished_at = NULL, updated_at = now()
  FROM picked p
 WHERE (t.job_id, t.stage, t.idx) = (p.job_id, p.stage, p.idx)
RETURNING t.idx`;

/** Re-opens stage $2: $3 fewer failed, sealed again if it was complete. */
export const reopenStage = (s: string) => `
UPDATE ${s}.stages
   SET failed = greatest(failed - $3::int, 0),
       status = CASE WHEN status = 'complete' THEN 'sealed' ELSE status END,
       completed_at = NULL
 WHERE job_id = $1 AND idx = $2::int`;

/** The job runs again at stage $2. */
export const reopenJob = (s: string) => `
UPDATE ${s}.jobs
   SET status = 'running', current_stage = $2::int, result = NULL, error = NULL,
       finished_at = NULL, updated_at = now()
 WHERE id = $1
RETURNING ${JOB_COLUMNS}`;
