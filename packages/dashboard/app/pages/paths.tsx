/** The Paths page: the per-transport comparison as bars, charts over time and a table. */
import { useEffect, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import { get, live, query } from '../api.js';
import { Chart } from '../chart.js';
import { Notice, pathColour } from '../components.js';
import { count, duration, rate } from '../format.js';
import type { PathComparison, PathsReport } from '../types.js';

const WINDOWS: Record<string, string> = {
  '15m': 'Last 15 minutes',
  '1h': 'Last hour',
  '6h': 'Last 6 hours',
  '24h': 'Last 24 hours',
  all: 'All time',
};

interface Figure {
  title: string;
  note: string | ((paths: PathComparison[]) => string);
  better: 'higher' | 'lower';
  value: (p: PathComparison) => number | null;
  format: (v: number | null) => string;
}

const redrives = (p: PathComparison) =>
  Object.values(p.totals.redrives).reduce((sum, n) => sum + n, 0);

const FIGURES: Figure[] = [
  {
    title: 'Throughput',
    note: 'tasks per second of running time, all jobs',
    better: 'higher',
    value: (p) => p.totals.tasksPerSecond,
    format: (v) => (v == null ? '—' : `${rate(v)} tasks/s`),
  },
  {
    title: 'Job latency p50',
    note: 'created → finished, jobs of the window',
    better: 'lower',
    value: (p) => p.window.latencyP50Ms,
    format: duration,
  },
  {
    title: 'Job latency p95',
    note: (paths) =>
      paths.some((p) => p.window.latencySource === 'store')
        ? 'created → finished, all jobs'
        : 'created → finished, jobs of the window',
    better: 'lower',
    value: (p) => p.window.latencyP95Ms,
    format: duration,
  },
  {
    title: 'Queue wait p95',
    note: 'sent → first attempt, all tasks',
    better: 'lower',
    value: (p) => p.totals.queueWaitMs.p95,
    format: duration,
  },
  {
    title: 'Retries',
    note: 'attempts beyond the first, all tasks',
    better: 'lower',
    value: (p) => p.totals.retries,
    format: count,
  },
  {
    title: 'Poisoned',
    note: 'tasks failed for good',
    better: 'lower',
    value: (p) => p.totals.poisoned,
    format: count,
  },
  {
    title: 'Re-drives',
    note: 'lost work the reconciler sent again',
    better: 'lower',
    value: redrives,
    format: count,
  },
];

export function PathsPage() {
  const [window, setWindow] = useState('1h');
  const [report, setReport] = useState<PathsReport>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    const load = async () => {
      try {
        setReport(await get<PathsReport>(`/paths${query({ window })}`));
        setError(undefined);
      } catch (err) {
        setError((err as Error).message);
      }
    };
    void load();
    return live({ paths: '1', window }, { paths: setReport as (data: never) => void }, load, 5000);
  }, [window]);

  return (
    <section aria-labelledby="paths-title">
      <div class="page-head">
        <h1 id="paths-title">Paths compared</h1>
        <label class="inline">
          Window
          <select value={window} onChange={(e) => setWindow(e.currentTarget.value)}>
            {Object.entries(WINDOWS).map(([value, label]) => (
              <option value={value}>{label}</option>
            ))}
          </select>
        </label>
      </div>
      <p class="lead">
        The same jobs on each transport: how fast, how steady, how much went wrong. Latency
        percentiles cover the jobs created in the window; the other figures cover every job on the
        path.
      </p>
      {error ? <Notice kind="error">Could not load the comparison: {error}</Notice> : null}
      {report ? <Comparison report={report} /> : <p class="muted">Loading…</p>}
    </section>
  );
}

function Comparison({ report }: { report: PathsReport }) {
  const paths = report.paths;
  const colours = Object.fromEntries(
    paths.map((p, i) => [p.transport, pathColour(p.transport, i)]),
  );
  if (paths.every((p) => p.totals.jobs.total === 0))
    return (
      <Notice kind="info">No job has run yet: submit jobs on two paths to compare them.</Notice>
    );
  const throughput: uPlot.AlignedData = [
    report.throughput.at,
    ...paths.map((p) => report.throughput.tasksPerSecond[p.transport] ?? []),
  ];
  const latency = latencyData(report);
  return (
    <>
      <div class="cards">
        {FIGURES.map((figure) => (
          <FigureCard figure={figure} paths={paths} colours={colours} />
        ))}
      </div>
      <div class="charts">
        <Chart
          title="Tasks finished per second, per path"
          data={throughput}
          series={paths.map((p) => ({ label: p.transport, colour: colours[p.transport]! }))}
          yLabel="tasks/s"
          format={rate}
          empty="Sampled every few seconds while the dashboard is open: keep this page open while jobs run."
        />
        <Chart
          title="Job latency, each finished job"
          data={latency}
          series={paths.map((p) => ({
            label: p.transport,
            colour: colours[p.transport]!,
            points: true,
          }))}
          yLabel="latency"
          format={duration}
          empty="No job of this window has finished yet."
        />
      </div>
      <h2>All figures</h2>
      <div class="table-wrap">
        <table class="figures">
          <thead>
            <tr>
              <th scope="col">Path</th>
              <th scope="col">Jobs (ok / failed / running)</th>
              <th scope="col">Tasks/s</th>
              <th scope="col">Latency p50</th>
              <th scope="col">Latency p95</th>
              <th scope="col">Queue wait mean / p95</th>
              <th scope="col">Retries</th>
              <th scope="col">Timeouts</th>
              <th scope="col">Poisoned</th>
              <th scope="col">Re-drives</th>
            </tr>
          </thead>
          <tbody>
            {paths.map((p) => (
              <tr>
                <th scope="row">
                  <span class="swatch" style={{ background: colours[p.transport] }} /> {p.transport}
                </th>
                <td>
                  {count(p.totals.jobs.succeeded)} / {count(p.totals.jobs.failed)} /{' '}
                  {count(p.totals.jobs.running)}
                </td>
                <td>{rate(p.totals.tasksPerSecond)}</td>
                <td>{duration(p.window.latencyP50Ms)}</td>
                <td>{duration(p.window.latencyP95Ms)}</td>
                <td>
                  {duration(p.totals.queueWaitMs.mean)} / {duration(p.totals.queueWaitMs.p95)}
                </td>
                <td>{count(p.totals.retries)}</td>
                <td>{count(p.totals.timeouts)}</td>
                <td>{count(p.totals.poisoned)}</td>
                <td>{count(redrives(p))}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {paths.some((p) => p.window.truncated) ? (
        <p class="muted small">Latency percentiles use the newest 2,000 finished jobs of a path.</p>
      ) : null}
    </>
  );
}

function FigureCard(props: {
  figure: Figure;
  paths: PathComparison[];
  colours: Record<string, string>;
}) {
  const { figure, paths } = props;
  const values = paths.map((p) => figure.value(p));
  const known = values.filter((v): v is number => v != null);
  const max = Math.max(0, ...known);
  const best =
    known.length === 0
      ? undefined
      : figure.better === 'higher'
        ? Math.max(...known)
        : Math.min(...known);
  const bestIndex = best === undefined ? -1 : values.indexOf(best);
  const worst =
    known.length < 2
      ? undefined
      : figure.better === 'higher'
        ? Math.min(...known)
        : Math.max(...known);
  let verdict = '';
  if (best !== undefined && worst !== undefined && bestIndex >= 0 && best !== worst) {
    const ratio =
      figure.better === 'higher' ? best / Math.max(worst, 1e-9) : worst / Math.max(best, 1e-9);
    const name = paths[bestIndex]!.transport;
    verdict =
      best === 0 && figure.better === 'lower'
        ? `${name}: none`
        : `${name} ${ratio >= 10 ? Math.round(ratio) : ratio.toFixed(1)}× ${figure.better === 'higher' ? 'faster' : 'better'}`;
  }
  return (
    <article class="card">
      <h2 class="card-title">{figure.title}</h2>
      <p class="muted small">
        {typeof figure.note === 'string' ? figure.note : figure.note(paths)}
      </p>
      <ul class="bars">
        {paths.map((p, i) => {
          const v = values[i] ?? null;
          return (
            <li class={i === bestIndex && verdict ? 'best' : ''}>
              <span class="bar-label">{p.transport}</span>
              <span class="bar-track">
                <span
                  class="bar"
                  style={{
                    width: `${v == null || max === 0 ? 0 : Math.max(2, (v / max) * 100)}%`,
                    background: props.colours[p.transport],
                  }}
                />
              </span>
              <span class="bar-value">{figure.format(v)}</span>
            </li>
          );
        })}
      </ul>
      {verdict ? <p class="verdict">{verdict}</p> : null}
    </article>
  );
}

/** Every path's latency points on one shared, sorted x axis (uPlot's aligned data). */
function latencyData(report: PathsReport): uPlot.AlignedData {
  const xs = [...new Set(report.paths.flatMap((p) => report.latency[p.transport]?.at ?? []))].sort(
    (a, b) => a - b,
  );
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = report.paths.map((p) => {
    const column: (number | null)[] = xs.map(() => null);
    const points = report.latency[p.transport];
    points?.at.forEach((x, i) => {
      column[index.get(x)!] = points.ms[i] ?? null;
    });
    return column;
  });
  return [xs, ...ys];
}
