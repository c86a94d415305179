import { leadingRun } from './leadingRun.js';

/**
 * Lets windowed stages' tasks into the transport, a window at a time, in one statement for the
 * batch (`Store.releaseTasks`):
 * 1. `input`: one row per (job, stage) of the batch. A stage named twice takes its widest window;
 *    a stage not windowed yet only from the fan-out's entries (`fan_width`), the only caller
 *    that may window it.
 * 2. `stage_locks`: the stage rows of running jobs, not complete, windowed (or windowed now by the
 *    fan-out), whose range would grow: `upto = least(created, succeeded + failed + running +
 *    width)` above `released` — the window counts the tasks waiting in the transport, not those
 *    a worker took (`running`, the count claims and admissions keep in the same row).
 *    They are locked in key order (README, "Lock order"), and a locked row is read as its latest
 *    committed version, so callers releasing the same stage at once serialise here and each
 *    computes its range from where the previous one left it: no index goes to two callers.
 * 3. `bounds`: the range stops at the first index in `[from, upto)` whose task row this
 *    statement does not see. `created` of the locked row may count rows of a fan-out's insert
 *    that committed after this statement's snapshot was taken, or a later chunk of an insert
 *    whose earlier chunk is still in flight; releasing those indexes here would hand their
 *    messages to nobody. A later release (the fan-out's own, once its insert is done) goes on
 *    from the gap.
 * 4. `released`: `released` and `released_at` move in the locked row.
 * 5. The pending tasks of each gained range (running or finished ones have their message), read
 *    by primary-key range, one row per stage: the indexes and their inputs, in index order.
 * Task rows are only read, never locked: the statement holds stage rows only.
 * Job ids go once each ($1), windows name theirs by position (job_no). Widths are bigint: a
 * window may be any safe integer, and `released` never passes `created`.
 */
export const releaseTasks = (s: string) => `
WITH input AS (
  SELECT j.job_id, i.stage, max(i.width) AS width,
         max(i.width) FILTER (WHERE i.fan_out) AS fan_width, min(i.ord) AS ord
    FROM unnest($2::int[], $3::int[], $4::bigint[], $5::boolean[])
         WITH ORDINALITY AS i (job_no, stage, width, fan_out, ord)
    JOIN unnest($1::text[]) WITH ORDINALITY AS j (job_id, no) ON j.no = i.job_no
   GROUP BY j.job_id, i.stage
), stage_locks AS (
  -- Lock order (README): stage rows in key order; this statement locks nothing else.
  SELECT st.job_id, st.idx, i.ord, coalesce(st.released, 0) AS from_idx,
         least(st.created, st.succeeded + st.failed + st.running
                           + CASE WHEN st.released IS NULL THEN i.fan_width ELSE i.width END)::int AS upto
    FROM ${s}.stages st
    JOIN input i ON (st.job_id, st.idx) = (i.job_id, i.stage)
    JOIN ${s}.jobs j ON j.id = st.job_id
   WHERE j.status = 'running'
     AND st.status <> 'complete'
     -- Not windowed and no fan-out entry: left alone (least() skips a NULL, so say it).
     AND (st.released IS NOT NULL OR i.fan_width IS NOT NULL)
     AND least(st.created, st.succeeded + st.failed + st.running
                           + CASE WHEN st.released IS NULL THEN i.fan_width ELSE i.width END)
         > coalesce(st.released, 0)
   ORDER BY st.job_id, st.idx
     FOR NO KEY UPDATE OF st
), bounds AS MATERIALIZED (
  -- The range grows by the leading run of rows it sees. Materialized: the UPDATE below reads
  -- to_idx three times, and would otherwise run the count for each.
  SELECT l.job_id, l.idx, l.ord, l.from_idx,
         l.from_idx + ${leadingRun(s, { job: 'l.job_id', stage: 'l.idx', from: 'l.from_idx', below: 'l.upto' })}::int
           AS to_idx
    FROM stage_locks l
), released AS (
  UPDATE ${s}.stages st
     SET released = b.to_idx,
         released_at = now()
    FROM bounds b
   WHERE (st.job_id, st.idx) = (b.job_id, b.idx)
     AND b.to_idx > b.from_idx
  RETURNING b.job_id, b.idx, b.ord, b.from_idx, b.to_idx
)
SELECT r.job_id, r.idx AS stage,
       array_agg(t.idx ORDER BY t.idx) AS indexes,
       json_agg(t.input ORDER BY t.idx) AS inputs
  FROM released r
  JOIN ${s}.tasks t
    ON t.job_id = r.job_id AND t.stage = r.idx AND t.idx >= r.from_idx AND t.idx < r.to_idx
 WHERE t.status = 'pending'
 GROUP BY r.job_id, r.idx, r.ord
 ORDER BY r.ord`;
