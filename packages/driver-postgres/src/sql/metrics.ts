/**
 * Per-path aggregates straight from SQL. Latencies are milliseconds; p95 is `percentile_cont`
 * (interpolated). tasks_per_second = tasks of finished jobs / their summed running time.
 */
export const metrics = (s: string) => `
WITH job AS (
  SELECT transport,
         count(*)::int AS total,
         count(*) FILTER (WHERE status = 'queued')::int AS queued,
         count(*) FILTER (WHERE status = 'running')::int AS running,
         count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
         count(*) FILTER (WHERE status = 'failed')::int AS failed,
         count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled,
         avg(extract(epoch FROM finished_at - created_at) * 1000)
           FILTER (WHERE finished_at IS NOT NULL AND status <> 'cancelled')::float8 AS latency_mean,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at) * 1000)
           FILTER (WHERE finished_at IS NOT NULL AND status <> 'cancelled') AS latency_p95,
         sum(extract(epoch FROM finished_at - coalesce(started_at, created_at)) * 1000)
           FILTER (WHERE finished_at IS NOT NULL AND status <> 'cancelled')::float8 AS running_ms
    FROM ${s}.jobs
   GROUP BY transport
), task AS (
  SELECT j.transport,
         count(*)::int AS total,
         count(*) FILTER (WHERE t.status = 'succeeded')::int AS succeeded,
         count(*) FILTER (WHERE t.status = 'failed')::int AS failed,
         coalesce(sum(greatest(t.attempts - 1, 0)), 0)::float8 AS retries,
         coalesce(sum(t.timeouts), 0)::float8 AS timeouts,
         avg(extract(epoch FROM t.started_at - t.created_at) * 1000)::float8 AS wait_mean,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM t.started_at - t.created_at) * 1000)
           FILTER (WHERE t.started_at IS NOT NULL) AS wait_p95,
         count(*) FILTER (WHERE j.finished_at IS NOT NULL AND j.status <> 'cancelled')::float8 AS finished_tasks
    FROM ${s}.tasks t
    JOIN ${s}.jobs j ON j.id = t.job_id
   GROUP BY j.transport
), counter AS (
  SELECT transport, json_object_agg(name, value::float8) AS redrives FROM ${s}.counters GROUP BY transport
)
SELECT p.transport,
       coalesce(job.total, 0) AS jobs_total, coalesce(job.queued, 0) AS queued,
       coalesce(job.running, 0) AS running, coalesce(job.succeeded, 0) AS succeeded,
       coalesce(job.failed, 0) AS failed, coalesce(job.cancelled, 0) AS cancelled,
       job.latency_mean, job.latency_p95, job.running_ms,
       coalesce(task.total, 0) AS tasks_total, coalesce(task.succeeded, 0) AS tasks_succeeded,
       coalesce(task.failed, 0) AS tasks_failed, coalesce(task.retries, 0) AS retries,
       coalesce(task.timeouts, 0) AS timeouts, task.wait_mean, task.wait_p95,
       coalesce(task.finished_tasks, 0) AS finished_tasks,
       counter.redrives
  FROM (SELECT transport FROM job UNION SELECT transport FROM counter) p
  LEFT JOIN job ON job.transport = p.transport
  LEFT JOIN task ON task.transport = p.transport
  LEFT JOIN counter ON counter.transport = p.transport
 ORDER BY p.transport`;
