import { JOB_COLUMNS } from '../rows.js';

/**
 * Inserts a job with a due time and/or a deadline unless its id exists (then returns no row):
 * `scheduled` when it has a `run_at`, `queued` otherwise.
 */
export const createDelayedJob = (s: string) => `
INSERT INTO ${s}.jobs (id, name, params, transport, stage_count, idempotency_key, priority, run_at, deadline_at, status)
VALUES ($1, $2, $3::json, $4, $5::int, $6, $7, $8::timestamptz, $9::timestamptz,
        CASE WHEN $8::timestamptz IS NULL THEN 'queued' ELSE 'scheduled' END)
ON CONFLICT (id) DO NOTHING
RETURNING ${JOB_COLUMNS}`;
