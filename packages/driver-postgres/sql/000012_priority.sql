-- Job priorities (SubmitOptions.priority): the lane of a job's task messages. NULL is `normal`, the
-- default, so adding the column rewrites no row. Queue messages carry their lane in their queue
-- key ('<name>/task:high', '<name>/task:low'), which the (queue, run_at, id) index already serves.
ALTER TABLE jobs
  ADD COLUMN priority text CHECK (priority IN ('high', 'low'));
