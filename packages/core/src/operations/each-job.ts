/**
 * Walks every job a filter matches, page by page (newest first), for the bulk operations.
 * @module
 */
import type { JobSummary, ListJobsFilter, Store } from '../store.js';

/** Pages of jobs matching `filter` (its cursor and limit ignored), up to `max` jobs. */
export async function* eachJob(
  store: Pick<Store, 'listJobs'>,
  filter: ListJobsFilter,
  max = Number.POSITIVE_INFINITY,
): AsyncGenerator<JobSummary> {
  const { cursor: _cursor, limit: _limit, ...match } = filter;
  let cursor: string | undefined;
  let seen = 0;
  do {
    const page = await store.listJobs({ ...match, limit: 100, ...(cursor ? { cursor } : {}) });
    for (const job of page.jobs) {
      if (seen++ >= max) return;
      yield job;
    }
    cursor = page.nextCursor;
  } while (cursor);
}
