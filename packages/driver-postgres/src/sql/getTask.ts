import { TASK_COLUMNS } from '../rows.js';

export const getTask = (s: string) =>
  `SELECT ${TASK_COLUMNS} FROM ${s}.tasks WHERE job_id = $1 AND stage = $2::int AND idx = $3::int`;
