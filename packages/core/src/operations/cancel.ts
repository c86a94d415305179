/**
 * Cancelling many jobs at once by filter.
 * @module
 */
import type { ListJobsFilter, Store } from '../store.js';
import { eachJob } from './each-job.js';
import { CANCELLABLE_STATUSES } from './statuses.js';

/**
 * Cancels every job matching `filter` that is not finished yet — delayed (`scheduled`), queued or
 * running — its status narrowed to those three: a delayed job is as cancellable one by one, so a
 * bulk cancel must not leave it to start later. Handlers already running see `ctx.signal` abort
 * through the workers' cancel watch.
 */
export async function cancelJobs(
  store: Pick<Store, 'listJobs' | 'cancelJob'>,
  filter: ListJobsFilter,
): Promise<{ cancelled: number }> {
  const wanted =
    filter.status === undefined
      ? [...CANCELLABLE_STATUSES]
      : (typeof filter.status === 'string' ? [filter.status] : [...filter.status]).filter((s) =>
          CANCELLABLE_STATUSES.includes(s),
        );
  if (wanted.length === 0) return { cancelled: 0 };
  let cancelled = 0;
  for await (const job of eachJob(store, { ...filter, status: wanted })) {
    if (await store.cancelJob(job.id)) cancelled++;
  }
  return { cancelled };
}
