import type {
  JobPage,
  JobStatus,
  JobSummary,
  JobView,
  ListJobsFilter,
  MetricsReport,
  TaskPage,
  TaskResult,
  TaskStatus,
} from '@switchyard/core';
import type { Store } from '@switchyard/core/driver';

export type { JobPage, JobSummary, ListJobsFilter };

/**
 * What the dashboard calls on a Switchyard: the reads and the operations of the `Switchyard`
 * interface. A `Switchyard` from `createSwitchyard` satisfies it; the dashboard asks for no more
 * so that a host can hand it a narrower object (read-only, or one that audits every action).
 * The operations (`listJobs`, `listTasks`, `retry`) are optional: without one, its route answers
 * 501 `NOT_SUPPORTED` and the page says so; without `listJobs` or `listTasks`, the store's are read.
 */
export interface DashboardYard {
  getJob(jobId: string): Promise<JobView | undefined>;
  listJobs?(filter?: ListJobsFilter): Promise<JobPage>;
  listTasks?(
    jobId: string,
    options?: {
      status?: TaskStatus;
      stage?: number;
      batchId?: string;
      cursor?: string;
      limit?: number;
    },
  ): Promise<TaskPage>;
  results<O = unknown>(jobId: string, stage?: string | number): AsyncIterable<TaskResult<O>>;
  retry?(
    jobId: string,
    options?: { stage?: string | number; taskIds?: readonly string[] },
  ): Promise<{ jobId: string; retried: number; status: JobStatus }>;
  cancel(jobId: string): Promise<boolean>;
  metrics(): Promise<MetricsReport>;
  readonly transportNames: readonly string[];
  readonly jobs: ReadonlyMap<string, unknown>;
  readonly store?: Pick<Store, 'listTasks'> & {
    listJobs?(filter?: ListJobsFilter): Promise<JobPage>;
  };
}

/** The yard's `listJobs`, or its store's. */
export function jobsOf(yard: DashboardYard): NonNullable<DashboardYard['listJobs']> | undefined {
  if (yard.listJobs) return yard.listJobs.bind(yard);
  const store = yard.store;
  return store?.listJobs ? (filter) => store.listJobs!(filter) : undefined;
}

/** The yard's `listTasks`, or its store's. */
export function tasksOf(yard: DashboardYard): NonNullable<DashboardYard['listTasks']> | undefined {
  if (yard.listTasks) return yard.listTasks.bind(yard);
  const store = yard.store;
  return store ? (jobId, options) => store.listTasks(jobId, options) : undefined;
}
