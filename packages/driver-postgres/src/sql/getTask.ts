export const getTask = (s: string) =>
  `SELECT * FROM ${s}.tasks WHERE job_id = $1 AND stage = $2::int AND idx = $3::int`;
