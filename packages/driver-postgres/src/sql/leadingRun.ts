/**
 * A SQL expression: how many task rows of one stage, from index `from` on and below `below`, form
 * a run of consecutive indexes the statement sees. Rows are unique by index, so `idx - from`
 * equals `position - 1` exactly on that run. A release or a claim goes only as far as it: a
 * stage's counts or offer may include rows inserted after the statement's snapshot was taken, and
 * handing out their indexes would hand their tasks to nobody. Every argument is a SQL expression.
 */
export const leadingRun = (
  s: string,
  { job, stage, from, below }: { job: string; stage: string; from: string; below: string },
) => `(SELECT count(*) FILTER (WHERE c.consecutive)
   FROM (SELECT t.idx - ${from} = row_number() OVER (ORDER BY t.idx) - 1 AS consecutive
           FROM ${s}.tasks t
          WHERE t.job_id = ${job} AND t.stage = ${stage}
            AND t.idx >= ${from} AND t.idx < ${below}) c)`;
