/**
 * Per-path aggregates straight from SQL. Latencies are milliseconds; p95 is `percentile_cont`
 * (interpolated). tasks_per_second = tasks of finished jobs / their summed running time.
 * Purged jobs and tasks count through `purged_metrics` (their counts and sums): totals and means
 * cover every job ever run, percentiles the rows kept.
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
         sum(extract(epoch FROM finished_at - created_at) * 1000)
           FILTER (WHERE finished_at IS NOT NULL AND status <> 'cancelled')::float8 AS latency_sum,
         count(*) FILTER (WHERE finished_at IS NOT NULL AND status <> 'cancelled')::float8 AS latency_n,
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
         sum(extract(epoch FROM t.started_at - t.created_at) * 1000)::float8 AS wait_sum,
         count(t.started_at)::float8 AS wait_n,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM t.started_at - t.created_at) * 1000)
           FILTER (WHERE t.started_at IS NOT NULL) AS wait_p95,
         count(*) FILTER (WHERE j.finished_at IS NOT NULL AND j.status <> 'cancelled')::float8 AS finished_tasks
    FROM ${s}.tasks t
    JOIN ${s}.jobs j ON j.id = t.job_id
   GROUP BY j.transport
), counter AS (
  SELECT transport, json_object_agg(name, value::float8) AS redrives FROM ${s}.counters GROUP BY transport
), waiting AS (
  -- Open tasks of running jobs marked waiting by flow control (the partial index holds only them).
  SELECT j.transport,
         count(*) FILTER (WHERE t.waiting = 'concurrency')::int AS concurrency,
         count(*) FILTER (WHERE t.waiting = 'rateLimit')::int AS rate_limit
    FROM ${s}.tasks t
    JOIN ${s}.jobs j ON j.id = t.job_id
   WHERE t.waiting IS NOT NULL AND t.status IN ('pending', 'running') AND j.status = 'running'
   GROUP BY j.transport
), windowed AS (
  -- Created tasks of running jobs' open windowed stages not released into the transport yet.
  SELECT j.transport, sum(st.created - st.released)::int AS waiting
    FROM ${s}.jobs j
    JOIN ${s}.stages st ON st.job_id = j.id
   WHERE j.status = 'running' AND st.released IS NOT NULL AND st.status <> 'complete'
   GROUP BY j.transport
)
SELECT p.transport,
       (coalesce(job.total, 0) + coalesce(g.succeeded + g.failed + g.cancelled, 0))::int AS jobs_total,
       coalesce(job.queued, 0) AS queued, coalesce(job.running, 0) AS running,
       (coalesce(job.succeeded, 0) + coalesce(g.succeeded, 0))::int AS succeeded,
       (coalesce(job.failed, 0) + coalesce(g.failed, 0))::int AS failed,
       (coalesce(job.cancelled, 0) + coalesce(g.cancelled, 0))::int AS cancelled,
       (coalesce(job.latency_sum, 0) + coalesce(g.latency_sum_ms, 0))
         / nullif(coalesce(job.latency_n, 0) + coalesce(g.latency_n, 0), 0) AS latency_mean,
       job.latency_p95,
       nullif(coalesce(job.running_ms, 0) + coalesce(g.running_ms, 0), 0) AS running_ms,
       (coalesce(task.total, 0) + coalesce(g.tasks, 0))::int AS tasks_total,
       (coalesce(task.succeeded, 0) + coalesce(g.tasks_succeeded, 0))::int AS tasks_succeeded,
       (coalesce(task.failed, 0) + coalesce(g.tasks_failed, 0))::int AS tasks_failed,
       coalesce(task.retries, 0) + coalesce(g.retries, 0) AS retries,
       coalesce(task.timeouts, 0) + coalesce(g.timeouts, 0) AS timeouts,
       (coalesce(task.wait_sum, 0) + coalesce(g.wait_sum_ms, 0))
         / nullif(coalesce(task.wait_n, 0) + coalesce(g.wait_n, 0), 0) AS wait_mean,
       task.wait_p95,
       coalesce(task.finished_tasks, 0) + coalesce(g.finished_tasks, 0) AS finished_tasks,
       counter.redrives,
       coalesce(waiting.concurrency, 0) AS waiting_concurrency,
       coalesce(waiting.rate_limit, 0) AS waiting_rate_limit,
       coalesce(windowed.waiting, 0) AS waiting_for_window
  FROM (SELECT transport FROM job UNION SELECT transport FROM counter
        UNION SELECT transport FROM ${s}.purged_metrics) p
  LEFT JOIN job ON job.transport = p.transport
  LEFT JOIN task ON task.transport = p.transport
  LEFT JOIN counter ON counter.transport = p.transport
  LEFT JOIN waiting ON waiting.transport = p.transport
  LEFT JOIN windowed ON windowed.transport = p.transport
  LEFT JOIN ${s}.purged_metrics g ON g.transport = p.transport
 ORDER BY p.transport`;
