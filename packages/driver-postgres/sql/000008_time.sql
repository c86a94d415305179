-- Time: delayed jobs (`scheduled` until `run_at`), job deadlines, and cron schedules' state.
ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
  CHECK (status IN ('scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE jobs ADD COLUMN run_at timestamptz;
ALTER TABLE jobs ADD COLUMN deadline_at timestamptz;
-- The scheduler's two scans: delayed jobs coming due, open jobs coming to their deadline.
CREATE INDEX jobs_due_idx ON jobs (run_at) WHERE status = 'scheduled';
CREATE INDEX jobs_deadline_idx ON jobs (deadline_at)
  WHERE deadline_at IS NOT NULL AND status IN ('scheduled', 'queued', 'running');

CREATE TABLE schedules (
  name         text PRIMARY KEY,
  paused       boolean NOT NULL DEFAULT false,
  -- Every fire at or before this is accounted for (fired or skipped).
  cursor_at    timestamptz,
  last_fire_at timestamptz,
  last_job_id  text,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
