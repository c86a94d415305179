import { STAGE_COLUMNS } from '../rows.js';

export const getStages = (s: string) =>
  `SELECT ${STAGE_COLUMNS} FROM ${s}.stages WHERE job_id = $1 ORDER BY idx`;
