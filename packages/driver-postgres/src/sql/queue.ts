/**
 * The queue transport's statements. `$1` is the queue key ('<transport name>/<kind>', with
 * ':high' or ':low' for a task queue's priority lanes), or the keys of a queue's lanes.
 * A message is due when run_at <= now(); receiving pushes run_at out by the visibility timeout.
 */

/** Enqueues a batch in one statement and wakes listeners if any message is due now. */
export const sendMessages = (s: string) => `
WITH sent AS (
  INSERT INTO ${s}.queue_messages (queue, body, message_id, run_at)
  SELECT $1, m.body, m.message_id, now() + m.delay_ms * interval '1 millisecond'
    FROM ROWS FROM (json_array_elements_text($2::json), unnest($3::text[]), unnest($4::int[]))
         AS m (body, message_id, delay_ms)
  RETURNING run_at <= now() AS due
)
SELECT pg_notify($5, $1) FROM (SELECT 1 FROM sent WHERE due LIMIT 1) wake`;

/** Locks up to $2 due messages (skipping those other receivers hold) and hides them for $3 ms. */
export const receiveMessages = (s: string) => `
UPDATE ${s}.queue_messages m
   SET run_at = now() + $3::int * interval '1 millisecond',
       locked_until = now() + $3::int * interval '1 millisecond',
       delivery_count = m.delivery_count + 1
  FROM (
    SELECT id FROM ${s}.queue_messages
     WHERE queue = $1 AND run_at <= now()
     ORDER BY run_at, id
     LIMIT $2::int
     FOR UPDATE SKIP LOCKED
  ) due
 WHERE m.id = due.id
RETURNING m.id::text AS id, m.body, m.delivery_count, m.enqueued_at`;

/**
 * Receives from a queue's three priority lanes ($1, $2, $3: their keys in the order this receive
 * reads them): up to $4 due messages, taking from each lane what the ones before it left. Each
 * lane is one range of the (queue, run_at, id) index, so an empty lane costs one index probe.
 */
export const receiveLanes = (s: string) => `
WITH first_lane AS (
  SELECT id FROM ${s}.queue_messages
   WHERE queue = $1 AND run_at <= now()
   ORDER BY run_at, id
   LIMIT $4::int
   FOR UPDATE SKIP LOCKED
), second_lane AS (
  SELECT id FROM ${s}.queue_messages
   WHERE queue = $2 AND run_at <= now()
   ORDER BY run_at, id
   LIMIT $4::int - (SELECT count(*) FROM first_lane)
   FOR UPDATE SKIP LOCKED
), third_lane AS (
  SELECT id FROM ${s}.queue_messages
   WHERE queue = $3 AND run_at <= now()
   ORDER BY run_at, id
   LIMIT $4::int - (SELECT count(*) FROM first_lane) - (SELECT count(*) FROM second_lane)
   FOR UPDATE SKIP LOCKED
)
UPDATE ${s}.queue_messages m
   SET run_at = now() + $5::int * interval '1 millisecond',
       locked_until = now() + $5::int * interval '1 millisecond',
       delivery_count = m.delivery_count + 1
 -- An id array, not a join: the planner cannot size the lanes' union, and a join it guessed large
 -- became a hash join over the whole table; an array of ids is read by primary key.
 WHERE m.id = ANY (ARRAY(SELECT id FROM first_lane UNION ALL SELECT id FROM second_lane
                         UNION ALL SELECT id FROM third_lane))
RETURNING m.id::text AS id, m.queue, m.body, m.delivery_count, m.enqueued_at`;

/** Deletes completed messages; (id, delivery_count) must match the delivery being settled. */
export const completeMessages = (s: string) => `
DELETE FROM ${s}.queue_messages m
 USING unnest($2::bigint[], $3::int[]) AS d (id, delivery_count)
 WHERE m.queue = $1 AND m.id = d.id AND m.delivery_count = d.delivery_count`;

/** Makes retried messages due again after their delay. */
export const retryMessages = (s: string) => `
UPDATE ${s}.queue_messages m
   SET run_at = now() + d.delay_ms * interval '1 millisecond', locked_until = NULL
  FROM unnest($2::bigint[], $3::int[], $4::int[]) AS d (id, delivery_count, delay_ms)
 WHERE m.queue = $1 AND m.id = d.id AND m.delivery_count = d.delivery_count
RETURNING d.delay_ms = 0 AS due`;

/** Moves messages to the dead-letter table with their reason, in one statement. */
export const deadLetterMessages = (s: string) => `
WITH moved AS (
  DELETE FROM ${s}.queue_messages m
   USING unnest($2::bigint[], $3::int[], $4::text[], $5::text[]) AS d (id, delivery_count, reason, description)
   WHERE m.queue = $1 AND m.id = d.id AND m.delivery_count = d.delivery_count
  RETURNING m.*, d.reason, d.description
)
INSERT INTO ${s}.queue_dead_letters (id, queue, body, message_id, delivery_count, reason, description, enqueued_at)
SELECT id, queue, body, message_id, delivery_count, reason, description, enqueued_at FROM moved`;

/** Keeps a received message hidden for another $4 ms. */
export const extendLock = (s: string) => `
UPDATE ${s}.queue_messages
   SET run_at = now() + $4::int * interval '1 millisecond',
       locked_until = now() + $4::int * interval '1 millisecond'
 WHERE queue = $1 AND id = $2::bigint AND delivery_count = $3::int
RETURNING id`;

export const listDeadLetters = (s: string) => `
SELECT id::text AS id, queue, body, reason, description, dead_lettered_at
  FROM ${s}.queue_dead_letters
 WHERE queue = ANY ($1::text[])
 ORDER BY id
 LIMIT $2::int`;

/** Where a replay pass starts: the newest dead letter now, and the time (the pass's snapshot). */
export const replayStart = (s: string) => `
SELECT coalesce(max(id), 0)::text AS max_id, now() AS started_at
  FROM ${s}.queue_dead_letters
 WHERE queue = ANY ($1::text[])`;

/**
 * The next batch of a replay pass: dead letters of the snapshot ($2 newest id, $3 start time)
 * after id $4, all or the ids in $5, at most $6.
 */
export const replayBatch = (s: string) => `
SELECT id::text AS id, queue, body, reason, description, dead_lettered_at
  FROM ${s}.queue_dead_letters
 WHERE queue = ANY ($1::text[]) AND id <= $2::bigint AND dead_lettered_at <= $3::timestamptz
   AND id > $4::bigint AND ($5::bigint[] IS NULL OR id = ANY ($5::bigint[]))
 ORDER BY id
 LIMIT $6::int`;

/**
 * Moves the dead letters $2 (of the queue keys $1) back to the queue they came from — their own
 * lane — as fresh messages, body as stored; one a concurrent pass moved already is not moved again.
 */
export const replayDeadLetters = (s: string) => `
WITH moved AS (
  DELETE FROM ${s}.queue_dead_letters
   WHERE queue = ANY ($1::text[]) AND id = ANY ($2::bigint[])
  RETURNING queue, body, message_id
), requeued AS (
  INSERT INTO ${s}.queue_messages (queue, body, message_id)
  SELECT queue, body, message_id FROM moved
  RETURNING queue
)
SELECT count(*)::int AS replayed, pg_notify($3, min(queue)) FROM requeued`;
