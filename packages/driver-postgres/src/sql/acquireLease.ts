/** Takes the lease if it is free, expired, or already ours; returns a row only on success. */
export const acquireLease = (s: string) => `
INSERT INTO ${s}.leases AS l (name, owner, expires_at)
VALUES ($1, $2, clock_timestamp() + $3::int * interval '1 millisecond')
ON CONFLICT (name) DO UPDATE
   SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
 WHERE l.expires_at <= clock_timestamp() OR l.owner = EXCLUDED.owner
RETURNING owner`;
