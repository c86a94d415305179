-- The Postgres queue transport. One table holds every queue (`queue` = '<transport name>/<kind>').
-- A message is deliverable when run_at <= now(): receiving it pushes run_at out by the visibility
-- timeout, so a crashed worker's message simply becomes due again. delivery_count doubles as the
-- lock token: a settlement only applies to the delivery it was received with.

CREATE TABLE queue_messages (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue          text NOT NULL,
  body           text NOT NULL,
  message_id     text,
  run_at         timestamptz NOT NULL DEFAULT now(),
  locked_until   timestamptz,
  delivery_count int  NOT NULL DEFAULT 0,
  enqueued_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX queue_messages_due_idx ON queue_messages (queue, run_at, id);

CREATE TABLE queue_dead_letters (
  id               bigint PRIMARY KEY,
  queue            text NOT NULL,
  body             text NOT NULL,
  message_id       text,
  delivery_count   int  NOT NULL,
  reason           text NOT NULL,
  description      text,
  enqueued_at      timestamptz NOT NULL,
  dead_lettered_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX queue_dead_letters_queue_idx ON queue_dead_letters (queue, id);
