/**
 * Keyset page of jobs, newest first: rows after the cursor position ($6 microseconds since the
 * epoch, $7 id) in (created_at, id) descending order. The cursor keeps microseconds, the
 * precision of `timestamptz`, so no two jobs of one millisecond are skipped or repeated.
 */
export const listJobs = (s: string) => `
SELECT id, name, status, transport, current_stage, error, created_at, started_at, finished_at,
       (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_us
  FROM ${s}.jobs
 WHERE ($1::text[] IS NULL OR status = ANY ($1::text[]))
   AND ($2::text IS NULL OR name = $2::text)
   AND ($3::text IS NULL OR transport = $3::text)
   AND ($4::timestamptz IS NULL OR created_at >= $4::timestamptz)
   AND ($5::timestamptz IS NULL OR created_at < $5::timestamptz)
   AND ($6::bigint IS NULL
        OR (created_at, id) < ('epoch'::timestamptz + $6::bigint * interval '1 microsecond', $7::text))
 ORDER BY created_at DESC, id DESC
 LIMIT $8::int`;
