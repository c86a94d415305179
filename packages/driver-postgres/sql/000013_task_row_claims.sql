-- Task-row claims (core's TaskRowClaimsCapability): when the Postgres transport shares this schema
-- with the store, a task's row is its message. The fan-out *offers* a stage's inserted tasks; a
-- receive claims ranges of them (a lease row each) and delivers each range's open tasks as one
-- pack; settling the range deletes its lease. Nothing is written per task between the fan-out's
-- insert and the barrier's update.

-- Names this schema's task rows. The store and the transport each read it, and the engine lets
-- the transport claim task rows only when both read the same value: the same database and schema.
CREATE TABLE task_rows_identity (
  id text NOT NULL
);
INSERT INTO task_rows_identity (id) VALUES (gen_random_uuid()::text);

-- One row per offered stage. `queue` is the transport's task queue ('<name>/task'): two transports
-- of different names never claim each other's offers. The tasks below `upto` have their rows; those
-- below `claimed` were handed out. A receive takes the open offers in its lane order, the least
-- recently claimed first, so stages of different jobs take turns.
CREATE TABLE task_offers (
  job_id      text NOT NULL,
  stage       int  NOT NULL,
  queue       text NOT NULL,
  lane        text NOT NULL CHECK (lane IN ('high', 'normal', 'low')),
  upto        int  NOT NULL,
  claimed     int  NOT NULL DEFAULT 0,
  pack_tasks  int  NOT NULL,
  traceparent text,
  tracestate  text,
  offered_at  timestamptz NOT NULL DEFAULT now(),
  claimed_at  timestamptz NOT NULL DEFAULT '-infinity',
  PRIMARY KEY (job_id, stage)
);
CREATE INDEX task_offers_open_idx ON task_offers (queue, claimed_at) WHERE claimed < upto;

-- A claimed range [from_idx, to_idx) of a stage's tasks: their message. Hidden until
-- `lease_until`; an expired lease is delivered again with `delivery_count` one higher, which is
-- also the lock token a settlement must match.
CREATE TABLE task_leases (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue          text NOT NULL,
  lane           text NOT NULL,
  job_id         text NOT NULL,
  stage          int  NOT NULL,
  from_idx       int  NOT NULL,
  to_idx         int  NOT NULL,
  traceparent    text,
  tracestate     text,
  delivery_count int  NOT NULL DEFAULT 1,
  lease_until    timestamptz NOT NULL,
  enqueued_at    timestamptz NOT NULL
);
CREATE INDEX task_leases_due_idx ON task_leases (queue, lease_until);
CREATE INDEX task_leases_job_idx ON task_leases (job_id);
