/** The Jobs page: filters, a keyset-paginated list, live progress of the jobs on screen. */
import { useEffect, useState } from 'preact/hooks';
import { get, live, query } from '../api.js';
import { Notice, ProgressBar, StatusBadge, useTick } from '../components.js';
import { count, duration, since, time } from '../format.js';
import type { JobPage, JobProgress, JobSummary } from '../types.js';

const RANGES: Record<string, number | undefined> = {
  '15m': 15 * 60_000,
  '1h': 60 * 60_000,
  '24h': 24 * 60 * 60_000,
  '7d': 7 * 24 * 60 * 60_000,
  all: undefined,
};
const RANGE_LABELS: Record<string, string> = {
  '15m': 'Last 15 minutes',
  '1h': 'Last hour',
  '24h': 'Last 24 hours',
  '7d': 'Last 7 days',
  all: 'Any time',
};
const PAGE_SIZE = 50;

interface Filters {
  status: string;
  name: string;
  transport: string;
  range: string;
}

export function JobsPage(props: { transports: string[]; jobNames: string[] }) {
  const [filters, setFilters] = useState<Filters>({
    status: '',
    name: '',
    transport: '',
    range: 'all',
  });
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [page, setPage] = useState<JobPage>();
  const [progress, setProgress] = useState<Record<string, JobProgress>>({});
  const [error, setError] = useState<string>();
  useTick(1000);
  const cursor = cursors[cursors.length - 1];

  const load = async () => {
    const span = RANGES[filters.range];
    try {
      const next = await get<JobPage>(
        `/jobs${query({
          status: filters.status,
          name: filters.name,
          transport: filters.transport,
          created_after: span === undefined ? undefined : new Date(Date.now() - span).toISOString(),
          cursor,
          limit: PAGE_SIZE,
        })}`,
      );
      setPage(next);
      setError(undefined);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  useEffect(() => {
    void load();
    // The first page shows new jobs as they arrive; older pages stay put while read.
    if (cursor !== undefined) return;
    const timer = setInterval(load, 3000);
    return () => clearInterval(timer);
  }, [filters, cursor]);

  const active = (page?.jobs ?? []).filter((j) => j.status === 'running' || j.status === 'queued');
  const watched = active.map((j) => j.id).join(',');
  useEffect(() => {
    if (!watched) return;
    const apply = (list: JobProgress[]) =>
      setProgress((old) => ({ ...old, ...Object.fromEntries(list.map((p) => [p.id, p])) }));
    return live({ jobs: watched }, { progress: apply as (data: never) => void }, async () =>
      apply(await get<JobProgress[]>(`/progress${query({ ids: watched })}`)),
    );
  }, [watched]);

  const set = (patch: Partial<Filters>) => {
    setFilters({ ...filters, ...patch });
    setCursors([undefined]);
  };

  return (
    <section aria-labelledby="jobs-title">
      <h1 id="jobs-title">Jobs</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status
          <select value={filters.status} onChange={(e) => set({ status: e.currentTarget.value })}>
            <option value="">Any</option>
            {['scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Job name
          <select value={filters.name} onChange={(e) => set({ name: e.currentTarget.value })}>
            <option value="">Any</option>
            {props.jobNames.map((n) => (
              <option value={n}>{n}</option>
            ))}
          </select>
        </label>
        <label>
          Path
          <select
            value={filters.transport}
            onChange={(e) => set({ transport: e.currentTarget.value })}
          >
            <option value="">Any</option>
            {props.transports.map((t) => (
              <option value={t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          Created
          <select value={filters.range} onChange={(e) => set({ range: e.currentTarget.value })}>
            {Object.keys(RANGES).map((r) => (
              <option value={r}>{RANGE_LABELS[r]}</option>
            ))}
          </select>
        </label>
      </form>
      {error ? <Notice kind="error">Could not load jobs: {error}</Notice> : null}
      {page && page.jobs.length === 0 ? (
        <Notice kind="info">No job matches these filters.</Notice>
      ) : null}
      {page && page.jobs.length > 0 ? (
        <div class="table-wrap">
          <table class="jobs">
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Status</th>
                <th scope="col">Path</th>
                <th scope="col" class="wide">
                  Progress
                </th>
                <th scope="col">Created</th>
                <th scope="col">Duration</th>
              </tr>
            </thead>
            <tbody>
              {page.jobs.map((job) => (
                <JobRow job={job} progress={progress[job.id]} />
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <nav class="pager" aria-label="Pages">
        <button
          type="button"
          class="button"
          disabled={cursors.length <= 1}
          onClick={() => setCursors(cursors.slice(0, -1))}
        >
          ← Newer
        </button>
        <span class="muted">Page {cursors.length}</span>
        <button
          type="button"
          class="button"
          disabled={!page?.nextCursor}
          onClick={() => setCursors([...cursors, page?.nextCursor])}
        >
          Older →
        </button>
      </nav>
    </section>
  );
}

function JobRow({ job, progress }: { job: JobSummary; progress: JobProgress | undefined }) {
  const status = progress?.status ?? job.status;
  const active = status === 'running' || status === 'queued';
  return (
    <tr>
      <td>
        <a href={`#/jobs/${encodeURIComponent(job.id)}`} class="job-link">
          <strong>{job.name}</strong>
          <code class="id">{job.id}</code>
        </a>
      </td>
      <td>
        <StatusBadge status={status} />
      </td>
      <td>{job.transport}</td>
      <td class="wide">
        {active && progress ? (
          <div class="row-progress">
            <ProgressBar counts={progress} label={`Progress of job ${job.id}`} />
            <span class="muted small">
              stage {(progress.stageIndex ?? 0) + 1}/{progress.stageCount}
              {progress.stageName ? ` ${progress.stageName}` : ''} ·{' '}
              {count(progress.succeeded + progress.failed)}/{count(progress.total)}
            </span>
          </div>
        ) : job.error ? (
          <span class="error-text small">{job.error.message}</span>
        ) : (
          <span class="muted small">{active ? '…' : '—'}</span>
        )}
      </td>
      <td class="nowrap">{time(job.createdAt)}</td>
      <td class="nowrap">{duration(since(job.startedAt ?? job.createdAt, job.finishedAt))}</td>
    </tr>
  );
}
