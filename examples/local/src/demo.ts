/**
 * `npm run demo`: runs the seed's `hello_world` job on the embedded default — PGlite in a local
 * folder for both the store and the queue, no cloud account, no database server.
 *
 * Ctrl-C stops it gracefully; running it again resumes the same job (same params → same job id)
 * without redoing finished tasks. `--reset` starts clean.
 */
import { mkdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createSwitchyard, memoryStore, memoryTransport, silentLogger } from '@switchyard/core';
import type { Store, Transport } from '@switchyard/core/driver';
import { postgresStore, postgresTransport } from '@switchyard/driver-postgres';
import { helloWorld } from '@switchyard/example-jobs';
import { ProgressView } from './progress.js';

const USAGE = `Usage: npm run demo -- [options]

  --n <count>          greetings in stage 1 (default 1000)
  --work-ms <ms>       simulated work per task (default 0)
  --concurrency <k>    task handlers at once (default 128)
  --dir <path>         PGlite data folder (default .switchyard/demo)
  --memory             use the in-memory drivers instead of PGlite (nothing kept)
  --reset              delete the data folder first
  --json               print the summary as JSON on stdout
  --dashboard          serve the dashboard on http://127.0.0.1:<port> while the job runs
  --port <n>           the dashboard's port (default 4000)
  -h, --help           this help`;

async function main(): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const n = Number(args.n);
  const workMs = Number(args['work-ms']);
  const concurrency = Number(args.concurrency);
  for (const [name, value] of [
    ['--n', n],
    ['--work-ms', workMs],
    ['--concurrency', concurrency],
    ['--port', Number(args.port)],
  ] as const) {
    if (!Number.isInteger(value) || value < 0) {
      process.stderr.write(`${name} must be a non-negative integer\n\n${USAGE}\n`);
      return 2;
    }
  }
  const dir = resolve(args.dir);
  if (args.reset && !args.memory) await rm(dir, { recursive: true, force: true });
  if (!args.memory) await mkdir(dir, { recursive: true });

  const log = (line: string) => process.stderr.write(`${line}\n`);
  let store: Store;
  let transport: Transport;
  const openedAt = performance.now();
  if (args.memory) {
    store = memoryStore();
    transport = memoryTransport({ name: 'memory' });
  } else {
    log(`opening PGlite in ${dir} …`);
    const { PGlite } = await import('@electric-sql/pglite');
    const db = await PGlite.create(dir);
    store = postgresStore({ pglite: db });
    transport = postgresTransport({ pglite: db, name: 'postgres', visibilityTimeoutMs: 10_000 });
  }

  const yard = createSwitchyard({
    jobs: [helloWorld],
    store,
    transports: [transport],
    logger: silentLogger,
  });
  const served = args.dashboard
    ? await (await import('./dashboard.js')).startDashboard({
        yard,
        transports: [transport],
        port: Number(args.port),
      })
    : undefined;
  if (served) log(`dashboard: ${served.url}`);
  const submitted = await yard.submit('hello_world', { n, workMs });
  const before = await yard.getJob(submitted.jobId);
  const doneBefore = before?.stages.reduce((sum, s) => sum + s.succeeded + s.failed, 0) ?? 0;
  log(
    submitted.created
      ? `submitted ${submitted.jobId} (hello_world, n=${n}) on ${submitted.transport}`
      : `resuming ${submitted.jobId}: ${doneBefore} task(s) already done (${before?.status})`,
  );

  const stop = new AbortController();
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('\nstopping … (run the demo again to resume; Ctrl-C again to quit at once)');
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const startedAt = performance.now();
  const working = yard.work({
    concurrency,
    signal: stop.signal,
    visibilityTimeoutMs: 10_000,
    waitMs: 200,
  });
  const progress = new ProgressView();
  let job = before!;
  try {
    job = await yard.waitFor(submitted.jobId, {
      signal: stop.signal,
      pollIntervalMs: 100,
      onProgress: (j) => progress.update(j),
    });
    progress.update(job);
  } catch (err) {
    if (!interrupted) throw err;
  }
  stop.abort();
  await working;
  const seconds = (performance.now() - startedAt) / 1000;
  job = (await yard.getJob(submitted.jobId)) ?? job;
  if (served && !interrupted) {
    log(`job ${job.status}; the dashboard stays at ${served.url} until Ctrl-C`);
    // SIGTERM too: a process manager stops the demo with it, and the handler above keeps it from
    // ending the process on its own.
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
  }
  await served?.close();
  await yard.close();

  const tasks = job.stages.reduce((sum, s) => sum + s.succeeded + s.failed, 0);
  const executed = tasks - doneBefore;
  const summary = {
    jobId: job.id,
    status: job.status,
    transport: job.transport,
    n,
    tasks,
    executedThisRun: executed,
    seconds: round(seconds),
    openSeconds: round((startedAt - openedAt) / 1000),
    tasksPerSecond: round(executed / Math.max(seconds, 1e-9)),
    stages: job.stages.map((s) => ({
      name: s.name,
      total: s.total,
      succeeded: s.succeeded,
      failed: s.failed,
      durationMs: s.durationMs ?? null,
    })),
    result: job.result ?? null,
    error: job.error ?? null,
  };
  if (args.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } else {
    log('');
    log(`job       ${summary.jobId}`);
    log(
      `status    ${summary.status}${interrupted && job.status === 'running' ? ' (interrupted: run again to resume)' : ''}`,
    );
    log(`path      ${summary.transport}${args.memory ? ' (memory)' : ` (PGlite in ${dir})`}`);
    log(`tasks     ${summary.tasks} done, ${executed} in this run`);
    log(`time      ${summary.seconds} s (+${summary.openSeconds} s to open the store)`);
    log(`rate      ${summary.tasksPerSecond} tasks/s`);
    for (const s of summary.stages)
      log(
        `  ${s.name.padEnd(8)} ${s.succeeded} succeeded, ${s.failed} failed of ${s.total}${s.durationMs === null ? '' : ` in ${round(s.durationMs / 1000)} s`}`,
      );
    if (summary.result) log(`result    ${JSON.stringify(summary.result)}`);
    if (summary.error) log(`error     ${summary.error.message}`);
  }
  if (job.status === 'succeeded') return 0;
  return interrupted ? 130 : 1;
}

function parse() {
  return parseArgs({
    options: {
      n: { type: 'string', default: '1000' },
      'work-ms': { type: 'string', default: '0' },
      concurrency: { type: 'string', default: '128' },
      dir: { type: 'string', default: '.switchyard/demo' },
      memory: { type: 'boolean', default: false },
      reset: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      dashboard: { type: 'boolean', default: false },
      port: { type: 'string', default: '4000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  }).values;
}

const round = (x: number) => Math.round(x * 100) / 100;

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
