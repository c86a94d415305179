/**
 * Purging finished jobs while a job runs, on PostgreSQL: `hello_world` (n tasks per stage) runs
 * alone, then again while `Store.purgeJobs` deletes a backlog of finished jobs' task rows in the
 * default batches (100 jobs, 5,000 task rows, 20 ms between batches, as `yard.purge` and retention
 * do). Rounds alternate the two so both see the same machine; the figure is the running job's
 * tasks/s with the purge over without, per round.
 */
import { postgresStore, postgresTransport } from '@switchyard/driver-postgres';
import pg from 'pg';
import { round, runHello } from './hello.js';
import { DATABASE_URL, dropSchema, schemaName } from './lib/postgres.js';

export interface PurgeBenchOptions {
  /** Tasks per stage of the running job. @defaultValue 10000 */
  n?: number;
  /** Finished task rows seeded for the purge. @defaultValue 1000000 */
  rows?: number;
  rounds?: number;
  log?: (line: string) => void;
}

export async function runPurgeBench(options: PurgeBenchOptions = {}) {
  const n = options.n ?? 10_000;
  const rows = options.rows ?? 1_000_000;
  const rounds = options.rounds ?? 3;
  const log = options.log ?? (() => {});
  const schema = schemaName('purge');
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  const store = postgresStore({ connectionString: DATABASE_URL, schema, poolSize: 12 });
  try {
    await store.init();
    const seedStart = performance.now();
    await seed(admin, schema, rows);
    log(`seeded ${rows} finished task rows in ${round((performance.now() - seedStart) / 1000)} s`);
    const results: {
      round: number;
      alone: number;
      withPurge: number;
      ratio: number;
      purgedRows: number;
      purgeRowsPerSecond: number;
    }[] = [];
    for (let r = 1; r <= rounds; r++) {
      const alone = await hello(store, schema, n);
      const stop = new AbortController();
      const purge = purgeLoop(store, stop.signal);
      const withPurge = await hello(store, schema, n);
      stop.abort();
      const purged = await purge;
      const ratio = round(withPurge.tasksPerSecond / alone.tasksPerSecond, 3);
      results.push({
        round: r,
        alone: alone.tasksPerSecond,
        withPurge: withPurge.tasksPerSecond,
        ratio,
        purgedRows: purged.tasks,
        purgeRowsPerSecond: round(purged.tasks / purged.seconds),
      });
      log(
        `round ${r}: ${alone.tasksPerSecond} tasks/s alone, ${withPurge.tasksPerSecond} while purging (${ratio}x); ${purged.tasks} rows purged meanwhile, ${round(purged.tasks / purged.seconds)} rows/s`,
      );
    }
    const ratios = results.map((x) => x.ratio);
    log(
      `ratio with/without purge: ${Math.min(...ratios)}–${Math.max(...ratios)} over ${rounds} rounds`,
    );
    return { scenario: 'purge', n, seededRows: rows, rounds: results };
  } finally {
    await store.close();
    await dropSchema(admin, schema);
    await admin.end();
  }
}

async function hello(store: ReturnType<typeof postgresStore>, schema: string, n: number) {
  const transport = postgresTransport({
    connectionString: DATABASE_URL,
    schema,
    poolSize: 12,
    pollIntervalMs: 200,
  });
  return runHello(
    n,
    { store, transport },
    { closeDrivers: false, concurrency: 500, workers: 2 },
  ).finally(() => transport.close());
}

/** Purges the seeded backlog in default batches until stopped. */
async function purgeLoop(store: ReturnType<typeof postgresStore>, signal: AbortSignal) {
  const started = performance.now();
  let tasks = 0;
  const finishedBefore = new Date(Date.now() - 3_600_000);
  while (!signal.aborted) {
    const batch = await store.purgeJobs(
      { status: 'succeeded', finishedBefore },
      { jobs: 100, tasks: 5000 },
    );
    tasks += batch.tasks;
    if (!batch.more) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return { tasks, seconds: (performance.now() - started) / 1000 };
}

/** Finished jobs of 10,000 task rows each, with inputs and results, finished a day ago. */
async function seed(admin: pg.Pool, schema: string, rows: number): Promise<void> {
  const perJob = 10_000;
  const jobs = Math.ceil(rows / perJob);
  const s = `"${schema}"`;
  await admin.query(
    `INSERT INTO ${s}.jobs (id, name, params, transport, status, current_stage, stage_count,
                            created_at, started_at, finished_at, updated_at)
     SELECT 'old-' || g, 'old', '{}', 'postgres', 'succeeded', 0, 1,
            now() - interval '1 day', now() - interval '1 day', now() - interval '1 day', now()
       FROM generate_series(1, $1::int) g`,
    [jobs],
  );
  await admin.query(
    `INSERT INTO ${s}.stages (job_id, idx, name, status, total, created, succeeded)
     SELECT 'old-' || g, 0, 's', 'complete', $2::int, $2::int, $2::int FROM generate_series(1, $1::int) g`,
    [jobs, perJob],
  );
  await admin.query(
    `INSERT INTO ${s}.tasks (job_id, stage, idx, status, attempts, input, result, created_at,
                             started_at, finished_at)
     SELECT 'old-' || (i / $2::int + 1), 0, i % $2::int, 'succeeded', 1,
            json_build_object('i', i), json_build_object('greeting', 'hello ' || i),
            now() - interval '1 day', now() - interval '1 day', now() - interval '1 day'
       FROM generate_series(0, $1::int - 1) i`,
    [rows, perJob],
  );
  await admin.query(`ANALYZE ${s}.jobs; ANALYZE ${s}.tasks`);
}
