/**
 * Job- and stage-level stuck work of open jobs, oldest first: queued jobs whose first stage never
 * started, a current stage still fanning out, a current stage complete that the job never moved
 * past (the last one: never finalised).
 */
export const findStuckStages = (s: string) => `
SELECT kind, job_id, transport, stage FROM (
  SELECT 'job-not-started' AS kind, j.id AS job_id, j.transport, NULL::int AS stage, j.updated_at AS since
    FROM ${s}.jobs j
   WHERE j.status IN ('queued', 'running') AND j.current_stage < 0
     AND j.updated_at < now() - $1::int * interval '1 millisecond'
  UNION ALL
  SELECT CASE WHEN st.status = 'fanning_out' THEN 'fanout-incomplete'
              WHEN st.idx = j.stage_count - 1 THEN 'finalize-not-done'
              ELSE 'stage-not-advanced' END,
         j.id, j.transport, st.idx, coalesce(st.completed_at, st.started_at)
    FROM ${s}.jobs j
    JOIN ${s}.stages st ON st.job_id = j.id AND st.idx = j.current_stage
   WHERE j.status IN ('queued', 'running')
     AND (   (st.status = 'fanning_out' AND st.started_at < now() - $1::int * interval '1 millisecond')
          OR (st.status = 'complete' AND st.completed_at < now() - $1::int * interval '1 millisecond'))
) stuck
ORDER BY since
LIMIT $2::int`;

/**
 * Non-terminal tasks of open jobs' current, sealed stage, untouched for too long: $1 ms, doubled
 * for each time the reconciler already re-sent the task (at most $3 doublings). A windowed stage's
 * tasks from index `released` on were never sent, so none of them can be lost; a released task's
 * silence counts from the stage's latest release at the earliest, since it may have waited
 * unreleased long after its row was last written. Each stage's tasks are read per stage (LATERAL),
 * so that the bound on `released` is a range of the primary key and the read stops at $2 tasks: a
 * large windowed stage is mostly unreleased tasks, which the scan never reaches. The same holds for
 * a stage whose task rows are claimed in place (task-row claims): the tasks from its offer's
 * `claimed` on were never handed out, and a handed-out task's silence counts from the offer's
 * latest claim at the earliest.
 */
export const findLostTasks = (s: string) => `
SELECT t.job_id, j.transport, t.stage, t.idx
  FROM ${s}.jobs j
  JOIN ${s}.stages st ON st.job_id = j.id AND st.idx = j.current_stage AND st.status = 'sealed'
  LEFT JOIN ${s}.task_offers o ON o.job_id = st.job_id AND o.stage = st.idx
 CROSS JOIN LATERAL (
   SELECT t.job_id, t.stage, t.idx
     FROM ${s}.tasks t
    WHERE t.job_id = st.job_id AND t.stage = st.idx
      AND t.idx <= least(coalesce(st.released - 1, 2147483647), coalesce(o.claimed - 1, 2147483647))
      AND t.status IN ('pending', 'running')
      AND greatest(t.updated_at, coalesce(st.released_at, t.updated_at),
                   coalesce(o.claimed_at, t.updated_at))
          < now() - $1::int * interval '1 millisecond' * power(2, least(t.redrives, $3::int))
    ORDER BY t.idx
    LIMIT $2::int) t
 WHERE j.status IN ('queued', 'running')
 ORDER BY t.job_id, t.stage, t.idx
 LIMIT $2::int`;
