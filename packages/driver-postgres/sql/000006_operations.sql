-- Operating jobs: listing newest first, purging finished ones, and keeping their metrics.
--
-- listJobs pages by (created_at, id) descending with a keyset cursor; one index per filter it
-- serves without a scan of every job (status, name, transport; the plain one for no filter).
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_status_created_idx ON jobs (status, created_at DESC, id DESC);
CREATE INDEX jobs_name_created_idx ON jobs (name, created_at DESC, id DESC);
CREATE INDEX jobs_transport_created_idx ON jobs (transport, created_at DESC, id DESC);
-- purgeJobs finds finished jobs oldest first.
CREATE INDEX jobs_finished_idx ON jobs (status, finished_at)
  WHERE status IN ('succeeded', 'failed', 'cancelled');

-- What purged jobs and tasks contributed to the per-path metrics: counts and sums, so totals and
-- means stay exact after a purge (percentiles cover the rows kept).
CREATE TABLE purged_metrics (
  transport      text PRIMARY KEY,
  succeeded      bigint NOT NULL DEFAULT 0,
  failed         bigint NOT NULL DEFAULT 0,
  cancelled      bigint NOT NULL DEFAULT 0,
  latency_sum_ms float8 NOT NULL DEFAULT 0,
  latency_n      bigint NOT NULL DEFAULT 0,
  running_ms     float8 NOT NULL DEFAULT 0,
  finished_tasks bigint NOT NULL DEFAULT 0,
  tasks          bigint NOT NULL DEFAULT 0,
  tasks_succeeded bigint NOT NULL DEFAULT 0,
  tasks_failed   bigint NOT NULL DEFAULT 0,
  retries        bigint NOT NULL DEFAULT 0,
  timeouts       bigint NOT NULL DEFAULT 0,
  wait_sum_ms    float8 NOT NULL DEFAULT 0,
  wait_n         bigint NOT NULL DEFAULT 0
);
