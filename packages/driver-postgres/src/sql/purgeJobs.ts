/**
 * The two statements of one `purgeJobs` batch. $1 statuses, $2 finished before, $3 name or null,
 * $4 most jobs. Each picks the oldest finished matching jobs, locking them FOR SHARE (SKIP LOCKED:
 * a job being re-opened is left for a later batch, and a re-open waits for the batch to end, then
 * sees the job's rows gone and refuses). Both add what they delete to `purged_metrics`.
 */

/** Deletes up to $5 task rows of the picked jobs. */
export const purgeTasks = (s: string) => `
WITH picked AS (
  SELECT id, transport, status FROM ${s}.jobs
   WHERE status = ANY ($1::text[]) AND finished_at < $2::timestamptz
     AND ($3::text IS NULL OR name = $3::text)
   ORDER BY status, finished_at
   LIMIT $4::int
     FOR SHARE SKIP LOCKED
), doomed AS (
  SELECT t.job_id, t.stage, t.idx FROM ${s}.tasks t
    JOIN picked p ON p.id = t.job_id
   LIMIT $5::int
), gone AS (
  DELETE FROM ${s}.tasks t
   USING doomed d
   WHERE (t.job_id, t.stage, t.idx) = (d.job_id, d.stage, d.idx)
  RETURNING t.job_id, t.status, t.attempts, t.timeouts, t.created_at, t.started_at
), rolled AS (
  INSERT INTO ${s}.purged_metrics AS m (transport, tasks, tasks_succeeded, tasks_failed, retries,
                                        timeouts, wait_sum_ms, wait_n, finished_tasks)
  SELECT p.transport, count(*),
         count(*) FILTER (WHERE g.status = 'succeeded'),
         count(*) FILTER (WHERE g.status = 'failed'),
         coalesce(sum(greatest(g.attempts - 1, 0)), 0),
         coalesce(sum(g.timeouts), 0),
         coalesce(sum(extract(epoch FROM g.started_at - g.created_at) * 1000), 0),
         count(g.started_at),
         count(*) FILTER (WHERE p.status <> 'cancelled')
    FROM gone g JOIN picked p ON p.id = g.job_id
   GROUP BY p.transport
  ON CONFLICT (transport) DO UPDATE
     SET tasks = m.tasks + excluded.tasks,
         tasks_succeeded = m.tasks_succeeded + excluded.tasks_succeeded,
         tasks_failed = m.tasks_failed + excluded.tasks_failed,
         retries = m.retries + excluded.retries,
         timeouts = m.timeouts + excluded.timeouts,
         wait_sum_ms = m.wait_sum_ms + excluded.wait_sum_ms,
         wait_n = m.wait_n + excluded.wait_n,
         finished_tasks = m.finished_tasks + excluded.finished_tasks
  RETURNING 1
)
SELECT (SELECT count(*) FROM gone)::int AS tasks,
       (SELECT count(*) FROM picked)::int AS picked,
       (SELECT count(*) FROM rolled)::int AS rolled`;

/**
 * Deletes the picked jobs that have no task rows left (their stages go by cascade, their task-row
 * offers and leases here).
 */
export const purgeEmptyJobs = (s: string) => `
WITH picked AS (
  SELECT j.id FROM ${s}.jobs j
   WHERE j.status = ANY ($1::text[]) AND j.finished_at < $2::timestamptz
     AND ($3::text IS NULL OR j.name = $3::text)
     AND NOT EXISTS (SELECT 1 FROM ${s}.tasks t WHERE t.job_id = j.id)
   ORDER BY j.status, j.finished_at
   LIMIT $4::int
     FOR UPDATE SKIP LOCKED
), gone AS (
  DELETE FROM ${s}.jobs j
   USING picked p
   WHERE j.id = p.id
  RETURNING j.id, j.transport, j.status, j.created_at, j.started_at, j.finished_at
), offers_gone AS (
  -- Task-row claims' offers and leases of the jobs (a finished job's are all spent).
  DELETE FROM ${s}.task_offers o USING gone g WHERE o.job_id = g.id
), leases_gone AS (
  DELETE FROM ${s}.task_leases l USING gone g WHERE l.job_id = g.id
), rolled AS (
  INSERT INTO ${s}.purged_metrics AS m (transport, succeeded, failed, cancelled, latency_sum_ms,
                                        latency_n, running_ms)
  SELECT transport,
         count(*) FILTER (WHERE status = 'succeeded'),
         count(*) FILTER (WHERE status = 'failed'),
         count(*) FILTER (WHERE status = 'cancelled'),
         coalesce(sum(extract(epoch FROM finished_at - created_at) * 1000)
                    FILTER (WHERE status <> 'cancelled'), 0),
         count(*) FILTER (WHERE status <> 'cancelled'),
         coalesce(sum(extract(epoch FROM finished_at - coalesce(started_at, created_at)) * 1000)
                    FILTER (WHERE status <> 'cancelled'), 0)
    FROM gone
   GROUP BY transport
  ON CONFLICT (transport) DO UPDATE
     SET succeeded = m.succeeded + excluded.succeeded,
         failed = m.failed + excluded.failed,
         cancelled = m.cancelled + excluded.cancelled,
         latency_sum_ms = m.latency_sum_ms + excluded.latency_sum_ms,
         latency_n = m.latency_n + excluded.latency_n,
         running_ms = m.running_ms + excluded.running_ms
  RETURNING 1
)
SELECT (SELECT count(*) FROM gone)::int AS jobs, (SELECT count(*) FROM rolled)::int AS rolled`;

/** True when a matching finished job is left (another batch has work). */
export const purgeRemaining = (s: string) => `
SELECT EXISTS (
  SELECT 1 FROM ${s}.jobs
   WHERE status = ANY ($1::text[]) AND finished_at < $2::timestamptz
     AND ($3::text IS NULL OR name = $3::text)
) AS more`;
