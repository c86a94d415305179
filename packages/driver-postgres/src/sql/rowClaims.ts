import { leadingRun } from './leadingRun.js';

/**
 * Task-row claims: the transport's statements over the store's task rows (migration 000013). `$1`
 * is the task queue's key ('<transport name>/task'). A lease's id is its message id; its
 * `delivery_count` is the lock token a settlement must match, as for a queue message.
 */

/** The identity of the schema's task rows: the store and the transport both read it with this. */
export const taskRowsIdentity = (s: string) => `SELECT id FROM ${s}.task_rows_identity LIMIT 1`;

/**
 * Offers stages' tasks: each offer's `upto` only grows. The offers are one per stage, in key
 * order (the only rows this statement locks). Wakes receivers when an offer grew.
 */
export const offerTasks = (s: string) => `
WITH offered AS (
  INSERT INTO ${s}.task_offers AS o (job_id, stage, queue, lane, upto, pack_tasks, traceparent, tracestate)
  SELECT i.job_id, i.stage, $1, i.lane, i.upto, i.pack_tasks, i.traceparent, i.tracestate
    FROM unnest($2::text[], $3::int[], $4::text[], $5::int[], $6::int[], $7::text[], $8::text[])
         AS i (job_id, stage, lane, upto, pack_tasks, traceparent, tracestate)
  ON CONFLICT (job_id, stage) DO UPDATE SET upto = excluded.upto
   WHERE excluded.upto > o.upto
  RETURNING 1
)
SELECT pg_notify($9, $1) FROM (SELECT 1 FROM offered LIMIT 1) wake`;

/**
 * One receive's claims, up to $2 messages hidden for $3 ms:
 * 1. `expired`: leases whose lock ran out (a crashed or slow worker's ranges), delivered again.
 * 2. `offer`: for the messages left, the open offer first in the lane order $4, least recently
 *    claimed first, skipping one another receive holds; its job read (not locked).
 * 3. `bound`, `moved`: the offer hands out up to that many ranges of `k` tasks — its pack size, at
 *    most a sixteenth of what is left, so a small stage's tasks reach every worker — as far as
 *    the task rows this statement sees go. A job no longer running has its whole offer consumed,
 *    with no range.
 * 4. `leased`: a lease per range.
 * The answer reads each range's tasks by primary-key range: a first delivery's pending ones (none:
 * the range is dropped, not delivered), a redelivery's all of them, whatever their status — a
 * redelivery re-derives what the crash may have lost (a finished stage's advance), as the
 * redelivery of any task message does. Task and stage rows are only read: the statement locks
 * lease and offer rows, which no store statement touches (but a purge, deleting a finished job's).
 */
export const claimRanges = (s: string) => claimStatement(s, { wait: false });

/**
 * The claim again when {@link claimRanges} found nothing: new ranges only, and waiting for the
 * offer row another receive holds instead of skipping it (its claim commits within a statement).
 * With one big stage every receive wants the same offer: skipped, a receiver would sleep until a
 * notification or its poll. It locks no lease while it waits.
 */
export const claimRangesWaiting = (s: string) => claimStatement(s, { wait: true });

function claimStatement(s: string, { wait }: { wait: boolean }): string {
  return `
WITH expired AS (
  SELECT id FROM ${s}.task_leases
   WHERE queue = $1 AND lease_until <= now() AND ${wait ? 'false' : 'true'}
   ORDER BY lease_until
   LIMIT $2::int
     FOR UPDATE SKIP LOCKED
), redelivered AS (
  UPDATE ${s}.task_leases l
     SET lease_until = now() + $3::int * interval '1 millisecond',
         delivery_count = l.delivery_count + 1
   WHERE l.id IN (SELECT id FROM expired)
  RETURNING l.*
), wanted AS (
  SELECT $2::int - (SELECT count(*) FROM expired)::int AS n
), offer AS (
  SELECT o.job_id, o.stage, o.claimed, coalesce(j.status = 'running', false) AS running,
         greatest(1, least(o.pack_tasks, ceil((o.upto - o.claimed) / 16.0)::int)) AS k
    FROM ${s}.task_offers o
    LEFT JOIN ${s}.jobs j ON j.id = o.job_id
   WHERE o.queue = $1 AND o.claimed < o.upto AND (SELECT n FROM wanted) > 0
   ORDER BY array_position($4::text[], o.lane), o.claimed_at
   LIMIT 1
     FOR UPDATE OF o${wait ? '' : ' SKIP LOCKED'}
), bound AS MATERIALIZED (
  -- How far the claim may go: the leading run of task rows this statement sees. The locked offer
  -- row is its latest version, whose upto may count an insert that committed after this
  -- statement's snapshot (it waited for the offer's lock, or the offer moved meanwhile).
  SELECT f.job_id, f.stage, f.claimed,
         f.claimed + ${leadingRun(s, {
           job: 'f.job_id',
           stage: 'f.stage',
           from: 'f.claimed',
           below: 'f.claimed + f.k * (SELECT n FROM wanted)',
         })}::int AS seen_to
    FROM offer f
), moved AS (
  UPDATE ${s}.task_offers o
     SET claimed = CASE WHEN f.running THEN least(o.upto, b.seen_to) ELSE o.upto END,
         claimed_at = now()
    FROM offer f JOIN bound b ON (b.job_id, b.stage) = (f.job_id, f.stage)
   WHERE (o.job_id, o.stage) = (f.job_id, f.stage)
  RETURNING o.job_id, o.stage, o.lane, o.traceparent, o.tracestate, o.offered_at,
            f.claimed AS from_idx, o.claimed AS to_idx, f.k, f.running
), leased AS (
  INSERT INTO ${s}.task_leases (queue, lane, job_id, stage, from_idx, to_idx, traceparent,
                                tracestate, lease_until, enqueued_at)
  SELECT $1, m.lane, m.job_id, m.stage, g, least(g + m.k, m.to_idx), m.traceparent, m.tracestate,
         now() + $3::int * interval '1 millisecond', m.offered_at
    FROM moved m, generate_series(m.from_idx, m.to_idx - 1, m.k) AS g
   WHERE m.running
  RETURNING *
)
SELECT l.id::text AS id, l.job_id, l.stage, l.lane, l.traceparent, l.tracestate, l.delivery_count,
       l.enqueued_at,
       (SELECT json_agg(json_build_object('index', t.idx, 'input', t.input) ORDER BY t.idx)::text
          FROM ${s}.tasks t
         WHERE t.job_id = l.job_id AND t.stage = l.stage
           AND t.idx >= l.from_idx AND t.idx < l.to_idx
           AND (t.status = 'pending' OR l.delivery_count > 1)) AS tasks
  FROM (SELECT * FROM redelivered UNION ALL SELECT * FROM leased) l`;
}

/**
 * Makes claimed tasks due again after their delays: a lease of the one task each, hidden until then
 * and counted as delivered once, so the claim's expired leases deliver it with `delivery_count` 2
 * and the task whatever its status (as any redelivery). Wakes receivers when one is due at once.
 */
export const retryTaskRows = (s: string) => `
WITH leased AS (
  INSERT INTO ${s}.task_leases (queue, lane, job_id, stage, from_idx, to_idx, traceparent,
                                tracestate, lease_until, enqueued_at)
  SELECT $1, r.lane, r.job_id, r.stage, r.idx, r.idx + 1, r.traceparent, r.tracestate,
         now() + r.delay_ms * interval '1 millisecond', now()
    FROM unnest($2::text[], $3::int[], $4::int[], $5::text[], $6::int[], $7::text[], $8::text[])
         AS r (job_id, stage, idx, lane, delay_ms, traceparent, tracestate)
  RETURNING lease_until <= now() AS due
)
SELECT pg_notify($9, $1) FROM (SELECT 1 FROM leased WHERE due LIMIT 1) wake`;

/**
 * Dead-letters poisoned tasks without a message: each letter goes straight to the dead-letter
 * table in its lane ($1 is the task queue, $7 names the queue table whose sequence numbers both),
 * listed and replayed as any.
 */
export const deadLetterTaskRows = (s: string) => `
INSERT INTO ${s}.queue_dead_letters (id, queue, body, message_id, delivery_count, reason, description, enqueued_at)
SELECT nextval(pg_get_serial_sequence($7, 'id')),
       $1 || CASE d.lane WHEN 'high' THEN ':high' WHEN 'low' THEN ':low' ELSE '' END,
       d.body, d.message_id, 1, d.reason, d.description, now()
  FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
       AS d (lane, body, message_id, reason, description)`;

/** Deletes settled leases; (id, delivery_count) must match the delivery being settled. */
export const completeLeases = (s: string) => `
DELETE FROM ${s}.task_leases l
 USING unnest($2::bigint[], $3::int[]) AS d (id, delivery_count)
 WHERE l.queue = $1 AND l.id = d.id AND l.delivery_count = d.delivery_count`;

/** Delivers retried ranges again after their delay. */
export const retryLeases = (s: string) => `
UPDATE ${s}.task_leases l
   SET lease_until = now() + d.delay_ms * interval '1 millisecond'
  FROM unnest($2::bigint[], $3::int[], $4::int[]) AS d (id, delivery_count, delay_ms)
 WHERE l.queue = $1 AND l.id = d.id AND l.delivery_count = d.delivery_count
RETURNING d.delay_ms = 0 AS due`;

/**
 * Moves dead-lettered ranges to the dead-letter table as the messages they were delivered as
 * (their bodies, $4), in their lane, under ids of the queue's own sequence ($7 names the table):
 * they are listed and replayed as any dead letter.
 */
export const deadLetterLeases = (s: string) => `
WITH moved AS (
  DELETE FROM ${s}.task_leases l
   USING unnest($2::bigint[], $3::int[], $4::text[], $5::text[], $6::text[])
         AS d (id, delivery_count, body, reason, description)
   WHERE l.queue = $1 AND l.id = d.id AND l.delivery_count = d.delivery_count
  RETURNING l.lane, l.delivery_count, l.enqueued_at, d.body, d.reason, d.description
)
INSERT INTO ${s}.queue_dead_letters (id, queue, body, delivery_count, reason, description, enqueued_at)
SELECT nextval(pg_get_serial_sequence($7, 'id')),
       $1 || CASE lane WHEN 'high' THEN ':high' WHEN 'low' THEN ':low' ELSE '' END,
       body, delivery_count, reason, description, enqueued_at
  FROM moved`;

/** Keeps a claimed range hidden for another $4 ms. */
export const extendLease = (s: string) => `
UPDATE ${s}.task_leases
   SET lease_until = now() + $4::int * interval '1 millisecond'
 WHERE queue = $1 AND id = $2::bigint AND delivery_count = $3::int
RETURNING id`;

/** Deletes leases whose ranges had no open task left to deliver. */
export const dropLeases = (s: string) => `
DELETE FROM ${s}.task_leases WHERE queue = $1 AND id = ANY ($2::bigint[])`;
