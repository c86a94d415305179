-- Switchyard store schema. Applied by migrate.ts inside one transaction, under an advisory lock,
-- with search_path set to the target schema (so no schema name appears here).
--
-- JSON values use `json`, not `jsonb`: `json` keeps the exact text (key order, \u0000, number
-- spelling) and is cheaper to write; nothing ever queries inside these values.

CREATE TABLE jobs (
  id              text PRIMARY KEY,
  name            text NOT NULL,
  params          json,
  -- The processing path (transport name) the job was submitted on.
  transport       text NOT NULL,
  status          text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  current_stage   int  NOT NULL DEFAULT -1,
  stage_count     int  NOT NULL,
  idempotency_key text,
  result          json,
  error           json,
  created_at      timestamptz NOT NULL DEFAULT now(),
  started_at      timestamptz,
  finished_at     timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
-- The reconciler only ever looks at open jobs.
CREATE INDEX jobs_open_idx ON jobs (updated_at) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_transport_idx ON jobs (transport, status);

CREATE TABLE stages (
  job_id       text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  idx          int  NOT NULL,
  name         text NOT NULL,
  status       text NOT NULL DEFAULT 'fanning_out'
               CHECK (status IN ('fanning_out', 'sealed', 'complete')),
  -- Known once sealed; the barrier completes the stage when succeeded + failed reaches it.
  total        int,
  created      int  NOT NULL DEFAULT 0,
  succeeded    int  NOT NULL DEFAULT 0,
  failed       int  NOT NULL DEFAULT 0,
  running      int  NOT NULL DEFAULT 0,
  started_at   timestamptz NOT NULL DEFAULT now(),
  sealed_at    timestamptz,
  completed_at timestamptz,
  PRIMARY KEY (job_id, idx)
);

-- Task id is `${job_id}.${stage}.${idx}` (core's taskId()); the key is stored split so ordering,
-- keyset pagination and the per-stage scans are plain index range scans. No foreign key: the
-- stage row is checked once per insert statement instead of once per row.
CREATE TABLE tasks (
  job_id      text NOT NULL,
  stage       int  NOT NULL,
  idx         int  NOT NULL,
  status      text NOT NULL DEFAULT 'pending'
              CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
  attempts    int  NOT NULL DEFAULT 0,
  timeouts    int  NOT NULL DEFAULT 0,
  input       json,
  result      json,
  error       json,
  batch_id    text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  started_at  timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (job_id, stage, idx)
);

-- Claim check for payloads too large for a message.
CREATE TABLE payloads (
  key        text PRIMARY KEY,
  data       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Per-path counters (reconciler re-drives by reason).
CREATE TABLE counters (
  transport text   NOT NULL,
  name      text   NOT NULL,
  value     bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (transport, name)
);

CREATE TABLE leases (
  name       text PRIMARY KEY,
  owner      text NOT NULL,
  expires_at timestamptz NOT NULL
);
