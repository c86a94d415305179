export const getStages = (s: string) => `SELECT * FROM ${s}.stages WHERE job_id = $1 ORDER BY idx`;
