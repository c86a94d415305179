import { TASK_COLUMNS } from '../rows.js';

/** Keyset page of a job's tasks after (stage, idx) = ($4, $5), optionally filtered (stage, status, batch). */
export const listTasks = (s: string) => `
SELECT ${TASK_COLUMNS} FROM ${s}.tasks
 WHERE job_id = $1
   AND ($2::int IS NULL OR stage = $2::int)
   AND ($3::text IS NULL OR status = $3::text)
   AND (stage, idx) > ($4::int, $5::int)
   AND ($7::text IS NULL OR batch_id = $7::text)
 ORDER BY stage, idx
 LIMIT $6::int`;
