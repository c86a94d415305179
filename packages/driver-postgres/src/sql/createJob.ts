import { JOB_COLUMNS } from '../rows.js';

/** Inserts a job unless its id exists (then returns no row). */
export const createJob = (s: string) => `
INSERT INTO ${s}.jobs (id, name, params, transport, stage_count, idempotency_key, priority)
VALUES ($1, $2, $3::json, $4, $5::int, $6, $7)
ON CONFLICT (id) DO NOTHING
RETURNING ${JOB_COLUMNS}`;
