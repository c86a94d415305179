/**
 * `npm run chaos -- [--kills 200] [--paths postgres,storagequeue,servicebus] [--workers 3]
 * [--jobs 2] [--n 400] [--kills-per-run 6] [--pack-tasks K] [--seed S] [--otel] [--key-limit L]
 * [--rate-limit N/ms] [--lease-ms 2000] [--work-ms W] [--window W] [--prefetch P] [--json]` — a crash
 * campaign per path;
 * `--otel` registers an OpenTelemetry SDK in every worker and checks their exported spans afterwards
 * (`otel.ts`); with `--key-limit` (and `--rate-limit`) the first two stages' tasks are flow-limited
 * per key, every handler run is checked against the limits and no key slot may outlive its lease;
 * `--window` sets the fairness window (`batching.window`) small enough for kills to land between
 * a stage's releases; `--prefetch` lets each worker hold up to P tasks beyond its slots.
 * `npm run chaos -- soak [--jobs 3] [--n 10000] [--json]` — the Postgres load / soak run.
 * `npm run chaos -- contention [--runs 20] [--workers 3] [--jobs 3] [--n 5000] [--pack-tasks K]
 * [--json]` — workers with the engine's defaults, large concurrent jobs, nothing killed: no
 * deadlock and one attempt per task, every run.
 * `npm run chaos -- schedules [--kills 30] [--workers 3] [--json]` — cron schedules evaluated by a
 * fleet on PostgreSQL, the evaluator SIGKILLed inside its pass: every fire submitted once.
 * `npm run chaos -- operations [--runs 10] [--paths postgres,storagequeue,servicebus] [--workers 3]
 * [--jobs 3] [--n 200] [--kills-per-run 6] [--pack-tasks K] [--cancel-bound-ms 1000]
 * [--cancelled-retention-ms 10000 (60000 on storagequeue)] [--seed S] [--json]` — while workers
 * are SIGKILLed, failed jobs are retried, running jobs cancelled and finished jobs purged (`purge`,
 * and the workers' retention); see operations.ts.
 * With `--json` the last line is `{ "runs", "kills", "violations", "lost", "deadlocks", "paths": {…} }`
 * (contention: `{ "runs", "tasks", "deadlocks", "retriedTasks", "violations", … "perRun": […] }`).
 * Exits 1 on any invariant violation.
 * @module
 */
import { parseArgs } from 'node:util';
import { runContention } from './contention.js';
import { liveWorkers } from './fleet.js';
import { type PathReport, runCampaign } from './harness.js';
import { type OperationsReport, runOperations } from './operations.js';
import { PATHS, type PathName } from './paths.js';
import { runScheduleChaos } from './schedules.js';
import { runSoak } from './soak.js';

const USAGE = `usage: npm run chaos -- [campaign options] [--json]
       npm run chaos -- soak | contention | schedules | operations [options] [--json]
campaign options: --kills N --paths postgres,storagequeue,servicebus --workers N --jobs N --n N
  --kills-per-run N --pack-tasks K --seed S --otel --key-limit L --rate-limit N/ms --lease-ms MS
  --work-ms MS --window W --prefetch P
soak: --jobs N --n N; contention: --runs N --workers N --jobs N --n N --pack-tasks K;
schedules: --kills N --workers N; operations: --runs N --paths … --workers N --jobs N --n N
  --kills-per-run N --pack-tasks K --cancel-bound-ms MS --cancelled-retention-ms MS --seed S
Exits 1 on any invariant violation, 2 on a usage error.`;

const { values, positionals } = parseCommandLine();

/** The command line; a mistyped flag gets the usage, not a stack (exit 2). */
function parseCommandLine() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        kills: { type: 'string' },
        paths: { type: 'string', default: PATHS.join(',') },
        workers: { type: 'string', default: '3' },
        jobs: { type: 'string' },
        n: { type: 'string' },
        'kills-per-run': { type: 'string', default: '6' },
        'pack-tasks': { type: 'string' },
        window: { type: 'string' },
        prefetch: { type: 'string' },
        runs: { type: 'string' },
        'cancel-bound-ms': { type: 'string', default: '1000' },
        'cancelled-retention-ms': { type: 'string' },
        seed: { type: 'string' },
        'key-limit': { type: 'string' },
        'rate-limit': { type: 'string' },
        'lease-ms': { type: 'string' },
        'work-ms': { type: 'string' },
        json: { type: 'boolean', default: false },
        otel: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    console.error(`chaos: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const int = (s: string | undefined, fallback: number) =>
  s === undefined ? fallback : Number.parseInt(s, 10);
const log = (line: string) => console.error(line);
/** `--pack-tasks`; unset, the workers pack as the path's transport recommends (PostgreSQL: 64). */
const packTasks =
  values['pack-tasks'] === undefined ? {} : { packTasks: int(values['pack-tasks'], 1) };

if (positionals[0] === 'contention') {
  const report = await runContention({
    runs: int(values.runs, 20),
    workers: int(values.workers, 3),
    jobs: int(values.jobs, 3),
    n: int(values.n, 5000),
    ...packTasks,
    log,
  });
  const bad = report.perRun.filter((r) => r.violations.length > 0);
  console.log(
    [
      `contention (postgres, engine defaults): ${report.runs} runs × ${report.workers} workers × ${report.jobsPerRun} jobs, ${report.tasks} tasks in ${(report.durationMs / 1000).toFixed(1)} s`,
      `  deadlocks: ${report.deadlocks}, worker lines naming one: ${report.conflictLogs}, tasks with attempts > 1: ${report.retriedTasks}, attempts above handler runs: ${report.attemptsBeyondRuns}`,
      `  invariant violations: ${report.violations}, lost: ${report.lost}`,
      ...bad.flatMap((r) => r.violations.slice(0, 3).map((v) => `    run ${r.run}: ${v}`)),
    ].join('\n'),
  );
  if (values.json)
    console.log(
      JSON.stringify({
        ...report,
        perRun: report.perRun.map((r) => ({ ...r, violations: r.violations.slice(0, 5) })),
      }),
    );
  process.exitCode = report.violations > 0 ? 1 : 0;
} else if (positionals[0] === 'schedules') {
  const report = await runScheduleChaos({
    databaseUrl: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    kills: int(values.kills, 30),
    workers: int(values.workers, 3),
    log,
  });
  const by = Object.entries(report.killsBy)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  console.log(
    [
      `schedules (postgres): ${report.kills} evaluator kills (${by}; ${report.missedPoints} points not reached) in ${(report.durationMs / 1000).toFixed(1)} s`,
      ...Object.entries(report.schedules).map(
        ([name, s]) =>
          `  ${name}: ${s.fires} fires, ${s.created} jobs created, ${s.resubmitted} re-submissions (job existed)`,
      ),
      `  lost: ${report.lost}, doubled: ${report.doubled}, jobs not succeeded: ${report.notRun}, killed fires re-submitted by the next evaluator: ${report.resumedAfterKill}`,
      `  invariant violations: ${report.violations.length}`,
      ...report.violations.slice(0, 10).map((v) => `    ${v}`),
    ].join('\n'),
  );
  if (values.json) console.log(JSON.stringify(report));
  process.exitCode = report.violations.length > 0 ? 1 : 0;
} else if (positionals[0] === 'operations') {
  const reports: OperationsReport[] = [];
  for (const path of pathList()) {
    const report = await runOperations({
      path,
      runs: int(values.runs, 10),
      workers: int(values.workers, 3),
      jobsPerRun: int(values.jobs, 3),
      n: int(values.n, 200),
      killsPerRun: int(values['kills-per-run'], 6),
      ...packTasks,
      cancelBoundMs: int(values['cancel-bound-ms'], 1000),
      ...(values['cancelled-retention-ms']
        ? { cancelledRetentionMs: int(values['cancelled-retention-ms'], 0) }
        : {}),
      ...(values.seed ? { seed: int(values.seed, 0) } : {}),
      log,
    });
    reports.push(report);
    console.log(operationsSummary(report));
  }
  const ran = reports.filter((r) => !r.skipped);
  const total = {
    runs: sum(ran, (r) => r.runs),
    kills: sum(ran, (r) => r.kills),
    violations: sum(ran, (r) => r.violations.length),
    lost: sum(ran, (r) => r.lost),
  };
  console.log(
    `total: ${total.runs} runs, ${total.kills} kills, ${total.violations} violations, ${total.lost} lost; workers left running: ${liveWorkers()}`,
  );
  if (values.json)
    console.log(
      JSON.stringify({
        ...total,
        paths: Object.fromEntries(
          reports.map((r) => [
            r.path,
            r.skipped
              ? { skipped: r.skipped }
              : {
                  ...r,
                  violations: r.violations.length,
                  firstViolations: r.violations.slice(0, 5),
                },
          ]),
        ),
      }),
    );
  process.exitCode = total.violations > 0 ? 1 : 0;
} else if (positionals[0] === 'soak') {
  const report = await runSoak({ jobs: int(values.jobs, 3), n: int(values.n, 10_000), log });
  console.log(
    [
      `soak (postgres): ${report.jobs} jobs × ${report.tasksPerJob} tasks in ${(report.durationMs / 1000).toFixed(1)} s, ${report.kills} kills`,
      `  survivor worker RSS: start ${mb(report.rss.start)}, end ${mb(report.rss.end)}, max ${mb(report.rss.max)}`,
      `  pg_stat_activity connections: before ${report.connections.before}, during (max) ${report.connections.duringMax}, after ${report.connections.after}`,
      `  invariant violations: ${report.violations.length}, lost: ${report.lost}`,
      ...report.violations.slice(0, 10).map((v) => `    ${v}`),
    ].join('\n'),
  );
  if (values.json) console.log(JSON.stringify(report));
  process.exitCode = report.violations.length > 0 || report.leaks.length > 0 ? 1 : 0;
} else {
  const paths = pathList();
  const kills = int(values.kills, 200);
  const reports: PathReport[] = [];
  const rate = values['rate-limit']?.split('/').map((v) => Number.parseInt(v, 10));
  const flow =
    values['key-limit'] === undefined && rate === undefined
      ? undefined
      : {
          ...(values['key-limit'] === undefined ? {} : { keyLimit: int(values['key-limit'], 3) }),
          ...(rate ? { rate: { limit: rate[0]!, periodMs: rate[1]! } } : {}),
          slotLeaseMs: int(values['lease-ms'], 2000),
        };
  for (const path of paths) {
    const report = await runCampaign({
      path,
      kills,
      workers: int(values.workers, 3),
      jobsPerRun: int(values.jobs, 2),
      n: int(values.n, 400),
      killsPerRun: int(values['kills-per-run'], 6),
      ...packTasks,
      ...(values.window ? { window: int(values.window, 2048) } : {}),
      ...(values.prefetch ? { prefetch: int(values.prefetch, 0) } : {}),
      ...(values.seed ? { seed: int(values.seed, 0) } : {}),
      ...(values.otel ? { otel: true } : {}),
      ...(flow ? { flow } : {}),
      ...(values['work-ms'] ? { maxWorkMs: int(values['work-ms'], 4) } : {}),
      log,
    });
    reports.push(report);
    console.log(summary(report));
  }
  const ran = reports.filter((r) => !r.skipped);
  const total = {
    runs: sum(ran, (r) => r.runs),
    kills: sum(ran, (r) => r.kills),
    violations: sum(ran, (r) => r.violations.length),
    lost: sum(ran, (r) => r.lost),
    deadlocks: sum(ran, (r) => r.deadlocks),
  };
  console.log(
    `total: ${total.runs} runs, ${total.kills} kills, ${total.violations} invariant violations, ${total.lost} lost, ${total.deadlocks} deadlocks; workers left running: ${liveWorkers()}`,
  );
  if (values.json)
    console.log(
      JSON.stringify({
        ...total,
        paths: Object.fromEntries(
          reports.map((r) => [
            r.path,
            r.skipped
              ? { skipped: r.skipped }
              : {
                  runs: r.runs,
                  kills: r.kills,
                  killsBy: r.killsBy,
                  violations: r.violations.length,
                  lost: r.lost,
                  jobs: r.jobs,
                  plainJobs: r.plainJobs,
                  tasks: r.tasks,
                  finalizeCalls: r.finalizeCalls,
                  unrecorded: r.unrecorded,
                  deadlocks: r.deadlocks,
                  conflictLogs: r.conflictLogs,
                  retriedTasks: r.retriedTasks,
                  attemptsBeyondRuns: r.attemptsBeyondRuns,
                  ...(r.offeredStages === undefined ? {} : { offeredStages: r.offeredStages }),
                  seed: r.seed,
                  durationMs: r.durationMs,
                  ...(r.flow ? { flow: r.flow } : {}),
                  firstViolations: r.violations.slice(0, 5),
                  ...(r.otel ? { otel: { ...r.otel, violations: r.otel.violations.length } } : {}),
                },
          ]),
        ),
      }),
    );
  process.exitCode = total.violations > 0 ? 1 : 0;
}

function pathList(): PathName[] {
  const paths = values.paths.split(',').map((p) => p.trim()) as PathName[];
  for (const p of paths)
    if (!PATHS.includes(p)) throw new Error(`unknown path "${p}" (${PATHS.join(', ')})`);
  return paths;
}

function operationsSummary(r: OperationsReport): string {
  if (r.skipped) return `${r.path}: skipped (${r.skipped})`;
  const by = Object.entries(r.killsBy)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const latest = r.cancelled.latestStartAfterCancelMs;
  return [
    `${r.path} operations: ${r.runs} runs, ${r.jobs} jobs, ${r.kills} kills (${by}) in ${(r.durationMs / 1000).toFixed(1)} s, seed ${r.seed}`,
    `  retried: ${r.retried.jobs} jobs (${r.retried.tasks} tasks re-opened); cancelled: ${r.cancelled.jobs} jobs, ${r.cancelled.startsAfterCancel} handler start(s) after a cancel returned${latest === null ? '' : ` (latest ${latest} ms after)`}`,
    `  purged: ${r.purged.byPurge.jobs} jobs / ${r.purged.byPurge.tasks} task rows by purge, ${r.purged.byRetention} cancelled jobs by retention; ${r.purged.checkedGone} checked fully gone; dead letters: ${r.poisonedDeadLetters} poisoned before a retry, ${r.lateDeadLetters} late of purged jobs`,
    `  violations: ${r.violations.length}, lost: ${r.lost}, deadlocks: ${r.deadlocks}`,
    ...r.violations.slice(0, 10).map((v) => `    ${v}`),
  ].join('\n');
}

function summary(r: PathReport): string {
  if (r.skipped) return `${r.path}: skipped (${r.skipped})`;
  const by = Object.entries(r.killsBy)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return [
    `${r.path}: ${r.runs} runs, ${r.jobs} jobs, ${r.tasks} tasks, ${r.kills} kills (${by}) in ${(r.durationMs / 1000).toFixed(1)} s, seed ${r.seed}`,
    `  invariant violations: ${r.violations.length}, lost: ${r.lost}, finalize calls: ${r.finalizeCalls} for ${r.jobs - r.plainJobs} jobs with finalize (effect applied once each; ${r.plainJobs} without), records missed in kill windows: ${r.unrecorded}`,
    `  deadlocks (server count, own database): ${r.deadlocks}, worker lines naming one: ${r.conflictLogs}; tasks with attempts > 1: ${r.retriedTasks}, attempts above handler runs in runs with kills: ${r.attemptsBeyondRuns}`,
    ...(r.offeredStages === undefined
      ? []
      : [`  stages whose task rows were claimed in place (no task messages): ${r.offeredStages}`]),
    ...(r.otel
      ? [
          `  otel: ${r.otel.spans} spans exported, ${r.otel.taskSpans} task spans: ${r.otel.inJobTrace} in their job's trace, ${r.otel.inWorkerTrace} in a trace a worker began, ${r.otel.withoutParent} without context; span violations: ${r.otel.violations.length}`,
        ]
      : []),
    ...(r.flow
      ? [
          `  flow: ${r.flow.runs} limited handler runs (${r.flow.cutByKill} cut by a kill), most of one key at once ${r.flow.maxConcurrent}, ${r.flow.admissions} rate-limited admissions, smallest start gap ${r.flow.minStartGapMs ?? '-'} ms`,
        ]
      : []),
    ...r.violations.slice(0, 10).map((v) => `    ${v}`),
  ].join('\n');
}

function sum<T>(list: T[], f: (t: T) => number): number {
  return list.reduce((a, t) => a + f(t), 0);
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
