/**
 * Flow control (core's FlowControlCapability): one admission is one call of the schema's
 * `flow_admit` function (migration 000010), which takes the key slot and the rate-limit start
 * together or not at all; renewals and releases touch only the caller's own slot rows.
 */

/** $1–$3 the task's key, $4–$8 the slot (nulls for none), $9–$12 the rate limit, $13 the wait. */
export const admitTask = (s: string) => `
SELECT outcome, retry_after_ms
  FROM ${s}.flow_admit($1::text, $2::int, $3::int,
                       $4::text, $5::text, $6::int, $7::text, $8::int,
                       $9::text, $10::text, $11::int, $12::int, $13::int)`;

/** Extends the named slots to $4 ms from now; returns the holders still there. */
export const renewSlots = (s: string) => `
UPDATE ${s}.flow_slots f
   SET expires_at = clock_timestamp() + $4::int * interval '1 millisecond'
  FROM unnest($1::text[], $2::text[], $3::text[]) AS r (scope, key, holder)
 WHERE (f.scope, f.key, f.holder) = (r.scope, r.key, r.holder)
RETURNING f.holder`;

export const releaseSlots = (s: string) => `
DELETE FROM ${s}.flow_slots f
 USING unnest($1::text[], $2::text[], $3::text[]) AS r (scope, key, holder)
 WHERE (f.scope, f.key, f.holder) = (r.scope, r.key, r.holder)`;

/** A job's open tasks marked waiting, per stage (from the partial index on waiting tasks). */
export const waitingTasks = (s: string) => `
SELECT stage,
       count(*) FILTER (WHERE waiting = 'concurrency')::int AS concurrency,
       count(*) FILTER (WHERE waiting = 'rateLimit')::int AS rate_limit
  FROM ${s}.tasks
 WHERE job_id = $1 AND waiting IS NOT NULL AND status IN ('pending', 'running')
 GROUP BY stage
 ORDER BY stage`;
