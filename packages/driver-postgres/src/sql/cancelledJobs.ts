/** Of the job ids in $1, those that are cancelled or no longer exist. */
export const cancelledJobs = (s: string) => `
SELECT w.id
  FROM unnest($1::text[]) AS w (id)
  LEFT JOIN ${s}.jobs j ON j.id = w.id
 WHERE j.id IS NULL OR j.status = 'cancelled'`;
