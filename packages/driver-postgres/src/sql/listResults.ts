/** A page of a stage's succeeded results after index $3: index and result only, by primary key. */
export const listResults = (s: string) => `
SELECT idx, result FROM ${s}.tasks
 WHERE job_id = $1 AND stage = $2::int AND idx > $3::int AND status = 'succeeded'
 ORDER BY idx
 LIMIT $4::int`;
