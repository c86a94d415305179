import type { JobView, TransportMetrics } from '@switchyard/core';
import type { TaskRecord } from '@switchyard/core/driver';

const BAR = 28;

/** A plain text table: a header row, aligned columns. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const num = (v: number | null | undefined, digits = 0) =>
  v === null || v === undefined ? '-' : v.toFixed(digits);

/** `$1.23`-style, or `-` when the transport reports no cost. */
function costPerMillion(p: TransportMetrics): string {
  const cost = p.cost;
  if (!cost || cost.perMillionTasks === null) return '-';
  const amount = cost.perMillionTasks.toFixed(cost.perMillionTasks < 1 ? 4 : 2);
  return cost.currency === 'USD' ? `$${amount}` : `${amount} ${cost.currency}`;
}

/** A count a store may not report: `-` when it does not. */
const optional = (n: number | undefined): string => (n === undefined ? '-' : String(n));

/** The path comparison: one column per path (cost rows need the transports' `usage()`). */
export function metricsTable(paths: TransportMetrics[]): string {
  const rows: [string, (p: TransportMetrics) => string][] = [
    ['jobs (total)', (p) => String(p.jobs.total)],
    ['jobs succeeded', (p) => String(p.jobs.succeeded)],
    ['jobs failed', (p) => String(p.jobs.failed)],
    ['jobs running/queued', (p) => `${p.jobs.running}/${p.jobs.queued}`],
    ['job latency mean ms', (p) => num(p.jobLatencyMs.mean)],
    ['job latency p95 ms', (p) => num(p.jobLatencyMs.p95)],
    ['queue wait mean ms', (p) => num(p.queueWaitMs.mean)],
    ['queue wait p95 ms', (p) => num(p.queueWaitMs.p95)],
    ['tasks/s', (p) => num(p.tasksPerSecond, 1)],
    ['tasks', (p) => String(p.tasks.total)],
    [
      'timeout rate',
      (p) => (p.tasks.total ? `${((100 * p.timeouts) / p.tasks.total).toFixed(2)}%` : '-'),
    ],
    ['retries', (p) => String(p.retries)],
    ['poisoned', (p) => String(p.poisoned)],
    // What open tasks wait for besides a worker: their window, a key slot, a rate limit.
    ['waiting for window', (p) => optional(p.waitingForWindow)],
    ['waiting for key slot', (p) => optional(p.waiting?.concurrency)],
    ['waiting for rate limit', (p) => optional(p.waiting?.rateLimit)],
    ['billable ops/task', (p) => num(p.usage?.perTask, 3)],
    ['throttled', (p) => (p.usage ? String(p.usage.throttled) : '-')],
    ['cost per 1M tasks', (p) => costPerMillion(p)],
  ];
  if (paths.length === 0) return 'no jobs yet';
  const body = table(
    ['metric', ...paths.map((p) => p.transport)],
    rows.map(([label, f]) => [label, ...paths.map(f)]),
  );
  // Transports count the operations of their own process: one that ran no tasks has no per-task figure.
  const unattributed = paths.some((p) => p.usage && p.usage.perTask === null);
  return unattributed
    ? `${body}\n\nbillable ops and cost are counted per process; this one ran no tasks. A worker's\nGET /api/metrics/comparison reports its own.`
    : body;
}

/** One line per stage: a bar, done/total, status, running, failed and cancelled counts. */
export function stageLines(job: JobView, bars = true): string[] {
  const width = Math.max(5, ...job.stages.map((s) => s.name.length));
  return job.stages.map((s) => {
    const done = s.succeeded + s.failed;
    const total = s.sealed ? s.total : Math.max(s.total, done);
    const ratio = total > 0 ? done / total : s.status === 'complete' ? 1 : 0;
    const filled = Math.round(ratio * BAR);
    const bar = bars ? `${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}  ` : '';
    const extra = [
      s.running ? `running ${s.running}` : '',
      s.failed ? `failed ${s.failed}` : '',
      s.cancelled ? `cancelled ${s.cancelled}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    return `${s.name.padEnd(width)}  ${bar}${`${done}/${total}${s.sealed ? '' : '+'}`.padStart(13)}  ${s.status} ${extra}`.trimEnd();
  });
}

/** A job summary, several lines. */
export function jobSummary(job: JobView): string {
  const lines = [
    `job       ${job.id}`,
    `name      ${job.name}`,
    `status    ${job.status}`,
    `path      ${job.transport}`,
  ];
  // `normal` is every job's unless said otherwise: only a chosen priority is worth a line.
  if (job.priority !== 'normal') lines.push(`priority  ${job.priority}`);
  if (job.currentStage)
    lines.push(`stage     ${job.currentStage.index} (${job.currentStage.name})`);
  if (job.durationMs !== undefined) lines.push(`duration  ${job.durationMs} ms`);
  if (job.stages.length > 0) lines.push('', ...stageLines(job, false));
  if (job.result !== undefined) lines.push('', `result    ${JSON.stringify(job.result)}`);
  if (job.error)
    lines.push('', `error     ${job.error.code ?? job.error.name}: ${job.error.message}`);
  return lines.join('\n');
}

export function tasksTable(tasks: TaskRecord[]): string {
  if (tasks.length === 0) return 'no tasks';
  return table(
    ['task', 'stage', 'index', 'status', 'attempts', 'error'],
    tasks.map((t) => [
      t.id,
      String(t.stage),
      String(t.index),
      t.status,
      String(t.attempts),
      t.error ? `${t.error.code ?? t.error.name}: ${t.error.message}`.slice(0, 80) : '',
    ]),
  );
}

/** Redraws stage bars in place on a TTY; on a pipe prints a line now and then. */
export class Progress {
  private lines = 0;
  private last = 0;
  constructor(private readonly out: NodeJS.WritableStream & { isTTY?: boolean }) {}

  update(job: JobView): void {
    const lines = stageLines(job, Boolean(this.out.isTTY));
    if (this.out.isTTY) {
      if (this.lines > 0) this.out.write(`\x1b[${this.lines}A`);
      for (const line of lines) this.out.write(`\x1b[2K${line}\n`);
      this.lines = lines.length;
    } else if (Date.now() - this.last > 2000) {
      this.last = Date.now();
      this.out.write(`${job.status}: ${lines.map((l) => l.replace(/\s+/g, ' ')).join(' | ')}\n`);
    }
  }
}
