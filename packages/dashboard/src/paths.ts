import type { MetricsReport } from '@switchyard/core';
import type { TransportMetrics } from '@switchyard/core/driver';
import { type DashboardYard, type JobSummary, jobsOf } from './operations.js';

/** Windows the Paths page offers, by name, in milliseconds (`all` has none). */
export const WINDOWS: Record<string, number | undefined> = {
  '15m': 15 * 60_000,
  '1h': 60 * 60_000,
  '6h': 6 * 60 * 60_000,
  '24h': 24 * 60 * 60_000,
  all: undefined,
};

/** Finished jobs read per path to compute a window's latency percentiles. */
export const LATENCY_SAMPLE_JOBS = 2000;

/** One path's figures on the Paths page. */
export interface PathComparison {
  transport: string;
  /** The store's aggregates over every job on the path (queue wait, tasks/s, retries …). */
  totals: TransportMetrics;
  /** Jobs created in the window and finished, from the newest {@link LATENCY_SAMPLE_JOBS}. */
  window: {
    jobs: number;
    succeeded: number;
    failed: number;
    latencyP50Ms: number | null;
    latencyP95Ms: number | null;
    /** True when the window held more finished jobs than were read. */
    truncated: boolean;
    /**
     * `window`: percentiles of the window's jobs; `store`: the store's p95 over every job (a
     * Switchyard without `listJobs`; no p50).
     */
    latencySource: 'window' | 'store';
  };
}

/** The Paths page's data: figures per path and the series its charts draw. */
export interface PathsReport {
  generatedAt: Date;
  window: string;
  windowStart?: Date;
  paths: PathComparison[];
  /** Sampled while the dashboard runs: x in unix seconds, then one y array per path. */
  throughput: { at: number[]; tasksPerSecond: Record<string, (number | null)[]> };
  /** Each finished job of the window: x finish time (unix seconds), y latency (ms). */
  latency: Record<string, { at: number[]; ms: number[] }>;
}

interface Sample {
  at: number;
  paths: TransportMetrics[];
}

/**
 * Keeps a bounded history of `metrics()` snapshots, taken on demand at most every `sampleMs`
 * (one store aggregate query per interval however many browsers watch), for the throughput chart.
 */
export class MetricsHistory {
  readonly #samples: Sample[] = [];
  #pending: Promise<MetricsReport> | undefined;
  #last: MetricsReport | undefined;

  constructor(
    private readonly yard: Pick<DashboardYard, 'metrics'>,
    private readonly options: { sampleMs: number; maxSamples: number },
  ) {}

  /** The latest snapshot, refreshed when older than `sampleMs`. */
  async current(now = Date.now()): Promise<MetricsReport> {
    const last = this.#last;
    if (last && now - last.generatedAt.getTime() < this.options.sampleMs) return last;
    this.#pending ??= this.yard.metrics().then(
      (report) => {
        this.#pending = undefined;
        this.#last = report;
        this.#samples.push({ at: report.generatedAt.getTime(), paths: report.transports });
        if (this.#samples.length > this.options.maxSamples) this.#samples.shift();
        return report;
      },
      (err: unknown) => {
        this.#pending = undefined;
        throw err;
      },
    );
    return this.#pending;
  }

  /** Tasks finished per second between consecutive samples since `since` (unix ms). */
  throughput(since: number | undefined, transports: readonly string[]): PathsReport['throughput'] {
    const samples = this.#samples.filter((s) => since === undefined || s.at >= since);
    const at: number[] = [];
    const tasksPerSecond: Record<string, (number | null)[]> = {};
    for (const t of transports) tasksPerSecond[t] = [];
    for (let i = 1; i < samples.length; i++) {
      const prev = samples[i - 1]!;
      const cur = samples[i]!;
      const seconds = (cur.at - prev.at) / 1000;
      if (seconds <= 0) continue;
      at.push(Math.round(cur.at / 1000));
      for (const t of transports) {
        const a = finished(prev.paths.find((p) => p.transport === t));
        const b = finished(cur.paths.find((p) => p.transport === t));
        tasksPerSecond[t]!.push(a === undefined || b === undefined ? null : (b - a) / seconds);
      }
    }
    return { at, tasksPerSecond };
  }
}

const finished = (p: TransportMetrics | undefined) =>
  p === undefined ? undefined : p.tasks.succeeded + p.tasks.failed;

/** Nearest-rank percentile of sorted values; null when there are none. */
export function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Builds the Paths page's report for a window (see {@link WINDOWS}). */
export async function comparePaths(
  yard: DashboardYard,
  history: MetricsHistory,
  window: string,
  now = Date.now(),
): Promise<PathsReport> {
  const span = WINDOWS[window];
  const windowStart = span === undefined ? undefined : new Date(now - span);
  const report = await history.current(now);
  const transports = [
    ...new Set([...yard.transportNames, ...report.transports.map((p) => p.transport)]),
  ];
  const latency: PathsReport['latency'] = {};
  const paths: PathComparison[] = [];
  for (const transport of transports) {
    const { jobs, truncated } = await finishedJobs(yard, transport, windowStart);
    const points = jobs
      .filter((j) => j.finishedAt !== undefined)
      .map((j) => ({
        at: j.finishedAt!.getTime(),
        ms: j.finishedAt!.getTime() - j.createdAt.getTime(),
      }))
      .sort((a, b) => a.at - b.at);
    latency[transport] = { at: points.map((p) => p.at / 1000), ms: points.map((p) => p.ms) };
    const sorted = points.map((p) => p.ms).sort((a, b) => a - b);
    const totals = report.transports.find((p) => p.transport === transport) ?? emptyPath(transport);
    const listed = jobsOf(yard) !== undefined;
    paths.push({
      transport,
      totals,
      window: {
        jobs: jobs.length,
        succeeded: jobs.filter((j) => j.status === 'succeeded').length,
        failed: jobs.filter((j) => j.status === 'failed').length,
        latencyP50Ms: percentile(sorted, 0.5),
        latencyP95Ms: listed ? percentile(sorted, 0.95) : totals.jobLatencyMs.p95,
        truncated,
        latencySource: listed ? 'window' : 'store',
      },
    });
  }
  return {
    generatedAt: new Date(now),
    window,
    ...(windowStart ? { windowStart } : {}),
    paths,
    throughput: history.throughput(windowStart?.getTime(), transports),
    latency,
  };
}

async function finishedJobs(
  yard: DashboardYard,
  transport: string,
  createdAfter: Date | undefined,
): Promise<{ jobs: JobSummary[]; truncated: boolean }> {
  const jobs: JobSummary[] = [];
  const listJobs = jobsOf(yard);
  if (!listJobs) return { jobs, truncated: false };
  let cursor: string | undefined;
  do {
    const page = await listJobs({
      transport,
      status: ['succeeded', 'failed'],
      ...(createdAfter ? { createdAfter } : {}),
      ...(cursor ? { cursor } : {}),
      limit: 500,
    });
    jobs.push(...page.jobs);
    cursor = page.nextCursor;
  } while (cursor && jobs.length < LATENCY_SAMPLE_JOBS);
  return { jobs: jobs.slice(0, LATENCY_SAMPLE_JOBS), truncated: cursor !== undefined };
}

function emptyPath(transport: string): TransportMetrics {
  return {
    transport,
    jobs: { total: 0, queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 },
    jobLatencyMs: { mean: null, p95: null },
    queueWaitMs: { mean: null, p95: null },
    tasksPerSecond: null,
    tasks: { total: 0, succeeded: 0, failed: 0 },
    retries: 0,
    timeouts: 0,
    poisoned: 0,
    redrives: {},
  };
}
