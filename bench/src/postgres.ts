/**
 * PostgreSQL benchmark, against the real server (`DATABASE_URL`):
 * - batch task creation through `postgresStore.insertTasks` next to a raw `COPY` of the same rows;
 * - graphile-worker and pg-boss enqueuing and draining no-op jobs with their high-throughput settings;
 * - `hello_world` end to end on postgresStore + postgresTransport;
 * - the statement floor: insert, admission and barrier statements alone, without engine or queue.
 * `--part fused-floor` runs the fused claim's statement floor instead (postgres-fused.ts): task rows
 * claimed as their own queue messages, beside graphile-worker and the statement floor.
 * Every part runs in its own schema, dropped afterwards.
 * @module
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createSwitchyard, silentLogger } from '@switchyard/core';
import { taskId } from '@switchyard/core/driver';
import { type PostgresStore, postgresStore, postgresTransport } from '@switchyard/driver-postgres';
import { helloWorld } from '@switchyard/example-jobs';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import {
  cpuMeter,
  DATABASE_URL,
  dropSchema,
  type GcFigures,
  gcMeter,
  schemaName,
} from './lib/postgres.js';

const require = createRequire(import.meta.url);

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

const version = (pkg: string): string =>
  (require(`${pkg}/package.json`) as { version: string }).version;

/** Creates the store's tables and a job `jobId` of one stage, started, ready for task rows. */
export async function startOneStageJob(
  store: PostgresStore,
  jobId: string,
  name: string,
): Promise<void> {
  await store.init();
  await store.createJob({ id: jobId, name, params: {}, transport: 'postgres', stageCount: 1 });
  await store.startStage(jobId, 0, 's');
}

/** insertTasks of `n` rows vs COPY of the same rows into a same-shaped scratch table. */
async function insertVsCopy(admin: pg.Pool, n: number) {
  const schema = schemaName('insert');
  const store = postgresStore({ connectionString: DATABASE_URL, schema });
  try {
    await startOneStageJob(store, 'bench', 'hello_world');
    const tasks = Array.from({ length: n }, (_, i) => ({
      index: i,
      input: { i, workMs: 0 },
      batchId: `b${Math.floor(i / 1000)}`,
    }));
    let t0 = performance.now();
    const inserted = await store.insertTasks('bench', 0, tasks);
    const insertS = (performance.now() - t0) / 1000;
    if (inserted !== n) throw new Error(`inserted ${inserted} of ${n}`);

    await admin.query(`CREATE TABLE "${schema}".copy_tasks (LIKE "${schema}".tasks INCLUDING ALL)`);
    const client = await admin.connect();
    try {
      t0 = performance.now();
      const lines = function* () {
        // Text format: tab-separated, backslash escapes (none needed for these values).
        for (const t of tasks)
          yield `bench\t0\t${t.index}\t${JSON.stringify(t.input)}\t${t.batchId}\n`;
      };
      await pipeline(
        Readable.from(lines()),
        client.query(
          copyFrom(`COPY "${schema}".copy_tasks (job_id, stage, idx, input, batch_id) FROM STDIN`),
        ),
      );
    } finally {
      client.release();
    }
    const copyS = (performance.now() - t0) / 1000;
    return { insertRowsPerSecond: n / insertS, copyRowsPerSecond: n / copyS };
  } finally {
    await store.close();
    await dropSchema(admin, schema);
  }
}

/** graphile-worker: enqueue `n` no-op jobs with addJobs, drain them with the performance-page settings. */
export async function graphileWorker(
  admin: pg.Pool,
  n: number,
): Promise<{ jobsPerSecond: number; cpuMicrosPerJob: { node: number; postgres?: number } }> {
  const { run, makeWorkerUtils } = await import('graphile-worker');
  const schema = schemaName('graphile');
  // 0.17 reads these only from preset.worker.
  const preset = {
    worker: {
      connectionString: DATABASE_URL,
      schema,
      concurrentJobs: 24,
      maxPoolSize: 25,
      pollInterval: 1000,
      localQueue: { size: 500 },
      completeJobBatchDelay: 0,
      failJobBatchDelay: 0,
    },
  };
  let done = 0;
  let resolveDone!: () => void;
  const drained = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const utils = await makeWorkerUtils({ preset });
  await utils.migrate();
  const runner = await run({
    preset,
    noHandleSignals: true,
    logger: new (await import('graphile-worker')).Logger(() => () => {}),
    taskList: {
      noop: async () => {
        if (++done === n) resolveDone();
      },
    },
  });
  try {
    const t0 = performance.now();
    const cpu = cpuMeter();
    for (let i = 0; i < n; i += 1000) {
      await utils.addJobs(
        Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({
          identifier: 'noop',
          payload: { i: i + j },
        })),
      );
    }
    await drained;
    return {
      jobsPerSecond: n / ((performance.now() - t0) / 1000),
      cpuMicrosPerJob: cpu.perItem(n),
    };
  } finally {
    await runner.stop();
    await utils.release();
    await dropSchema(admin, schema);
  }
}

/** pg-boss: batch insert `n` no-op jobs, drain with several batch-fetching workers. */
async function pgBoss(admin: pg.Pool, n: number): Promise<number> {
  const { default: PgBoss } = await import('pg-boss');
  const schema = schemaName('pgboss');
  const boss = new PgBoss({
    connectionString: DATABASE_URL,
    schema,
    max: 20,
    supervise: false,
    schedule: false,
    migrate: true,
  });
  boss.on('error', () => {});
  await boss.start();
  try {
    await boss.createQueue('noop');
    let done = 0;
    let resolveDone!: () => void;
    const drained = new Promise<void>((resolve) => {
      resolveDone = resolve;
    });
    // v10 has no teamSize: concurrency is several work() loops, each fetching a batch.
    for (let w = 0; w < 8; w++) {
      await boss.work('noop', { batchSize: 250, pollingIntervalSeconds: 0.5 }, async (jobs) => {
        done += jobs.length;
        if (done >= n) resolveDone();
      });
    }
    const t0 = performance.now();
    for (let i = 0; i < n; i += 1000) {
      await boss.insert(
        Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({
          name: 'noop',
          data: { i: i + j },
        })),
      );
    }
    await drained;
    return n / ((performance.now() - t0) / 1000);
  } finally {
    await boss.stop({ graceful: false, wait: true });
    await dropSchema(admin, schema);
  }
}

/**
 * The statement floor, with no engine and no queue: `n` tasks inserted through `insertTasks`, then
 * 4 connections each taking the next 500 tasks, admitting them as packs of `packTasks`
 * (`admitPacks`) and recording them through the real barrier (`completeTasks`) — the store
 * statements the engine runs for a packed fan-out's first deliveries. What the engine reaches
 * beyond these is its own cost and the queue's. CPU per task counts from the first insert on.
 */
export async function statementFloor(
  admin: pg.Pool,
  n: number,
  packTasks: number,
): Promise<{ tasksPerSecond: number; cpuMicrosPerTask: { node: number; postgres?: number } }> {
  const schema = schemaName('floor');
  const store = postgresStore({ connectionString: DATABASE_URL, schema, poolSize: 4 });
  const batch = 500;
  try {
    await startOneStageJob(store, 'floor', 'floor');
    const t0 = performance.now();
    const cpu = cpuMeter();
    for (let start = 0; start < n; start += 2000) {
      const tasks = Array.from({ length: Math.min(2000, n - start) }, (_, i) => ({
        index: start + i,
        input: { i: start + i, workMs: 0 },
      }));
      await store.insertTasks('floor', 0, tasks);
    }
    await store.sealStage('floor', 0, n);
    let next = 0;
    let completed = false;
    const worker = async () => {
      for (let from = next; from < n; from = next) {
        next += batch;
        const size = Math.min(batch, n - from);
        const packs = Array.from({ length: Math.ceil(size / packTasks) }, (_, p) => ({
          jobId: 'floor',
          stage: 0,
          tasks: Math.min(packTasks, size - p * packTasks),
        }));
        if (!(await store.admitPacks(packs)).every(Boolean)) throw new Error('a pack was refused');
        const result = await store.completeTasks(
          Array.from({ length: size }, (_, i) => ({
            jobId: 'floor',
            stage: 0,
            index: from + i,
            taskId: taskId('floor', 0, from + i),
            status: 'succeeded' as const,
            result: `hello #${from + i}`,
            attempt: 1,
            startedAt: new Date(),
          })),
        );
        if (result.completedStages.length > 0) completed = true;
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    const seconds = (performance.now() - t0) / 1000;
    const cpuMicrosPerTask = cpu.perItem(n);
    if (!completed) throw new Error('the floor run did not complete its stage');
    return { tasksPerSecond: n / seconds, cpuMicrosPerTask };
  } finally {
    await store.close();
    await dropSchema(admin, schema);
  }
}

/** One `hello_world` run of {@link endToEnd}. */
interface EndToEndOptions {
  /** Tasks per stage. */
  n: number;
  /** `batching.packTasks`. @defaultValue unset: the transport's recommendation (the driver's default) */
  packTasks?: number;
  /**
   * Each of the two workers' slots (in tasks: a pack's tasks take a slot each).
   * @defaultValue unset: `work()`'s default (64)
   */
  concurrency?: number;
  /** `work({ prefetch })`. @defaultValue unset: the transport's recommendation (32 per slot) */
  prefetch?: number;
  /**
   * The transport's `claimTaskRows`: false sends a queue message per task or pack, as before the
   * task rows were claimed in place. @defaultValue true (the driver's default)
   */
  claimTaskRows?: boolean;
}

/** `hello_world` end to end on postgresStore + postgresTransport; tasks/s over both stages. */
async function endToEnd(
  admin: pg.Pool,
  { n, packTasks, concurrency, prefetch, claimTaskRows }: EndToEndOptions,
): Promise<{
  tasksPerSecond: number;
  tasks: number;
  seconds: number;
  status: string;
  /** CPU microseconds per task: this process (engine and drivers), and the server when local. */
  cpuMicrosPerTask: { node: number; postgres?: number };
  /** This process's garbage collections during the run. */
  gc: GcFigures;
}> {
  const schema = schemaName('e2e');
  const store = postgresStore({ connectionString: DATABASE_URL, schema, poolSize: 12 });
  const transport = postgresTransport({
    connectionString: DATABASE_URL,
    schema,
    poolSize: 12,
    pollIntervalMs: 200,
    ...(claimTaskRows === undefined ? {} : { claimTaskRows }),
  });
  const yard = createSwitchyard({
    jobs: [helloWorld],
    store,
    transports: [transport],
    logger: silentLogger,
    reconcile: { intervalMs: 0 },
    ...(packTasks === undefined ? {} : { batching: { packTasks } }),
  });
  const controller = new AbortController();
  try {
    await store.init();
    const workers = [0, 1].map(() =>
      yard.work({
        ...(concurrency === undefined ? {} : { concurrency }),
        ...(prefetch === undefined ? {} : { prefetch }),
        signal: controller.signal,
        waitMs: 500,
      }),
    );
    try {
      const t0 = performance.now();
      const cpu = cpuMeter();
      const gc = gcMeter();
      const { jobId } = await yard.submit('hello_world', { n, workMs: 0 });
      const view = await yard.waitFor(jobId, { pollIntervalMs: 50 });
      const seconds = (performance.now() - t0) / 1000;
      const tasks = view.stages.reduce((sum, st) => sum + st.succeeded + st.failed, 0);
      return {
        tasksPerSecond: tasks / seconds,
        tasks,
        seconds,
        status: view.status,
        cpuMicrosPerTask: cpu.perItem(tasks),
        gc: gc.stop(),
      };
    } finally {
      controller.abort();
      await Promise.all(workers);
    }
  } finally {
    await yard.close();
    await dropSchema(admin, schema);
  }
}

const gcNote = (gc: GcFigures) =>
  `${gc.young} scavenges (${gc.youngMs} ms), ${gc.all} collections in all (${gc.allMs} ms)`;

/** Node's flag for the young generation's semi-space size, in MB. */
const SEMI_SPACE_FLAG = '--max-semi-space-size';

/**
 * `--part young-gen`: the defaults' end-to-end run (`--part e2e`) in child processes of this
 * bench, started with Node's default young generation and with a 64 MB semi-space, three rounds
 * alternated. A young generation's size is fixed when Node starts, so each setting needs its own
 * process.
 */
async function youngGenerationPart(): Promise<Record<string, unknown>> {
  const settings = { default: [], semiSpace64: [`${SEMI_SPACE_FLAG}=64`] } as const;
  const rounds: Record<keyof typeof settings, E2eChild>[] = [];
  for (let round = 0; round < 3; round++) {
    const figures = {} as Record<keyof typeof settings, E2eChild>;
    for (const [name, flags] of Object.entries(settings) as [
      keyof typeof settings,
      readonly string[],
    ][]) {
      figures[name] = await e2eChild(flags);
      log(
        `  round ${round + 1}, ${name}: ${figures[name].tasksPerSecond} tasks/s${cpuNote(figures[name].cpuMicrosPerTask)}; ${gcNote(figures[name].gc)}`,
      );
    }
    rounds.push(figures);
  }
  return {
    scenario: 'postgres',
    part: 'young-gen',
    n: 100_000,
    rounds,
    tasksPerSecondRatios: rounds.map((r) =>
      ratioOf(r.semiSpace64.tasksPerSecond, r.default.tasksPerSecond),
    ),
    nodeCpuPerTaskRatios: rounds.map((r) =>
      ratioOf(r.semiSpace64.cpuMicrosPerTask.node, r.default.cpuMicrosPerTask.node),
    ),
  };
}

interface E2eChild {
  tasksPerSecond: number;
  cpuMicrosPerTask: { node: number; postgres?: number };
  gc: GcFigures;
}

/** Runs `--part e2e` in a child Node started with `flags` (and none of NODE_OPTIONS' semi-space). */
async function e2eChild(flags: readonly string[]): Promise<E2eChild> {
  const nodeOptions = (process.env.NODE_OPTIONS ?? '')
    .split(/\s+/)
    .filter((o) => o !== '' && !o.startsWith(SEMI_SPACE_FLAG))
    .join(' ');
  const child = spawn(
    process.execPath,
    [...process.execArgv, ...flags, process.argv[1]!, 'postgres', '--part', 'e2e', '--json'],
    { env: { ...process.env, NODE_OPTIONS: nodeOptions }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0)
    throw new Error(`the e2e child (${flags.join(' ') || 'no flags'}) exited ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as E2eChild;
}

const cpuNote = (cpu: { node: number; postgres?: number }, per = 'task') =>
  `; CPU per ${per}: ${cpu.node} µs Node${cpu.postgres === undefined ? '' : ` + ${cpu.postgres} µs PostgreSQL`}`;

/** `a / b` to two decimals. */
const ratioOf = (a: number, b: number) => Math.round((a / b) * 100) / 100;

/**
 * Runs every setting once per round, in order, for three rounds — alternated, so that every
 * setting sees the same machine — and returns each round's tasks/s by setting.
 */
async function alternatedRounds<K extends string>(
  admin: pg.Pool,
  settings: Record<K, { label: string; options: EndToEndOptions }>,
): Promise<Record<K, number>[]> {
  const runs: Record<K, number>[] = [];
  for (let round = 0; round < 3; round++) {
    const figures = {} as Record<K, number>;
    const notes: string[] = [];
    for (const key of Object.keys(settings) as K[]) {
      const { label, options } = settings[key];
      const run = await endToEnd(admin, options);
      figures[key] = Math.round(run.tasksPerSecond);
      notes.push(
        `${label} ${run.tasksPerSecond.toFixed(0)} tasks/s${cpuNote(run.cpuMicrosPerTask)}`,
      );
    }
    log(`  round ${round + 1}: ${notes.join('; ')}`);
    runs.push(figures);
  }
  return runs;
}

/** The parts `--part` runs alone. */
export const POSTGRES_PARTS = [
  'packed',
  'floor',
  'fused-floor',
  'defaults',
  'prefetch',
  'claims',
  'young-gen',
  'e2e',
] as const;
export type PostgresPart = (typeof POSTGRES_PARTS)[number];

/**
 * One part of the benchmark alone, with its CPU per task: for comparing two checkouts. The fused
 * floor (postgres-fused.ts) runs its own graphile-worker and floor references.
 */
async function onePart(admin: pg.Pool, part: PostgresPart): Promise<Record<string, unknown>> {
  if (part === 'fused-floor') return (await import('./postgres-fused.js')).fusedFloorPart(admin);
  if (part === 'floor') {
    const floor = await statementFloor(admin, 100_000, 64);
    log(
      `  statement floor: 100000 tasks → ${floor.tasksPerSecond.toFixed(0)} tasks/s${cpuNote(floor.cpuMicrosPerTask)}`,
    );
    return {
      scenario: 'postgres',
      part,
      floorTasksPerSecond: Math.round(floor.tasksPerSecond),
      cpuMicrosPerTask: floor.cpuMicrosPerTask,
    };
  }
  if (part === 'prefetch') {
    // The defaults (`work()`'s 64 slots, with the prefetch the transport recommends: 32 per slot),
    // the recommendation before (8 per slot), prefetch off, and 500 slots per worker.
    const runs = await alternatedRounds(admin, {
      defaults: { label: 'defaults', options: { n: 100_000 } },
      perSlot8: { label: 'prefetch 8 per slot', options: { n: 100_000, prefetch: 8 * 64 } },
      noPrefetch: { label: 'prefetch 0', options: { n: 100_000, prefetch: 0 } },
      slots500: { label: '500 slots', options: { n: 100_000, concurrency: 500 } },
    });
    return {
      scenario: 'postgres',
      part,
      n: 100_000,
      runs,
      defaultsToPerSlot8: runs.map((r) => ratioOf(r.defaults, r.perSlot8)),
      defaultsToNoPrefetch: runs.map((r) => ratioOf(r.defaults, r.noPrefetch)),
      defaultsTo500Slots: runs.map((r) => ratioOf(r.defaults, r.slots500)),
    };
  }
  if (part === 'claims') {
    // The task rows claimed in place against a queue message per pack: the driver's defaults, and
    // its high-throughput settings, each with and without `claimTaskRows`.
    const runs = await alternatedRounds(admin, {
      defaults: { label: 'defaults (claims)', options: { n: 100_000 } },
      messages: {
        label: 'defaults, claimTaskRows: false',
        options: { n: 100_000, claimTaskRows: false },
      },
      packed: {
        label: 'high-throughput (claims)',
        options: { n: 100_000, packTasks: 64, concurrency: 2000 },
      },
      packedMessages: {
        label: 'high-throughput, claimTaskRows: false',
        options: { n: 100_000, packTasks: 64, concurrency: 2000, claimTaskRows: false },
      },
    });
    return {
      scenario: 'postgres',
      part,
      n: 100_000,
      runs,
      defaultsRatios: runs.map((r) => ratioOf(r.defaults, r.messages)),
      packedRatios: runs.map((r) => ratioOf(r.packed, r.packedMessages)),
    };
  }
  if (part === 'e2e') {
    // One run at the driver's defaults, with this process's collections: `young-gen` runs it in
    // child processes started with and without a larger young generation.
    const run = await endToEnd(admin, { n: 100_000 });
    log(
      `  defaults: ${run.tasksPerSecond.toFixed(0)} tasks/s${cpuNote(run.cpuMicrosPerTask)}; ${gcNote(run.gc)}`,
    );
    return {
      scenario: 'postgres',
      part,
      n: 100_000,
      tasksPerSecond: Math.round(run.tasksPerSecond),
      cpuMicrosPerTask: run.cpuMicrosPerTask,
      gc: run.gc,
    };
  }
  if (part === 'young-gen') return youngGenerationPart();
  if (part === 'defaults') {
    // The driver's defaults against one message per task (the defaults before the transport
    // recommended packs).
    const runs = await alternatedRounds(admin, {
      defaults: { label: 'defaults', options: { n: 100_000 } },
      single: { label: 'one message per task', options: { n: 100_000, packTasks: 1 } },
    });
    return {
      scenario: 'postgres',
      part,
      n: 100_000,
      runs,
      ratios: runs.map((r) => ratioOf(r.defaults, r.single)),
    };
  }
  const packed = await endToEnd(admin, { n: 100_000, packTasks: 64, concurrency: 2000 });
  log(
    `  hello_world n=100000, 64 tasks per message, 2 × 2000 slots: ${packed.status}, ${packed.tasksPerSecond.toFixed(0)} tasks/s${cpuNote(packed.cpuMicrosPerTask)}`,
  );
  return {
    scenario: 'postgres',
    part,
    tasksPerSecond: Math.round(packed.tasksPerSecond),
    status: packed.status,
    cpuMicrosPerTask: packed.cpuMicrosPerTask,
  };
}

/**
 * Runs the PostgreSQL benchmark and returns `{ scenario: 'postgres', insertRowsPerSecond,
 * copyRowsPerSecond, insertToCopyRatio, tasksPerSecond, graphileWorkerJobsPerSecond,
 * pgBossJobsPerSecond, versions, … }`; a human summary goes to stderr.
 * @param args.n rows for the insert-vs-COPY run (default 100,000).
 */
export async function runPostgresBench(args: {
  n?: number;
  json: boolean;
  /**
   * Only this part: the high-throughput run or the statement floor (before/after comparisons), or
   * the fused claim's statement floor beside its references.
   */
  part?: PostgresPart;
}): Promise<Record<string, unknown>> {
  const n = args.n ?? 100_000;
  const queueJobs = 10_000;
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  try {
    if (args.part) return await onePart(admin, args.part);
    const [{ server_version: serverVersion }] = (
      await admin.query<{ server_version: string }>('SHOW server_version')
    ).rows as [{ server_version: string }];
    log(`PostgreSQL ${serverVersion} at ${DATABASE_URL.replace(/:[^:@/]*@/, ':***@')}`);

    const { insertRowsPerSecond, copyRowsPerSecond } = await insertVsCopy(admin, n);
    const ratio = insertRowsPerSecond / copyRowsPerSecond;
    log(
      `  insertTasks: ${n} rows → ${insertRowsPerSecond.toFixed(0)} rows/s; COPY → ${copyRowsPerSecond.toFixed(0)} rows/s; ratio ${ratio.toFixed(2)} (target ≥ 0.5)`,
    );

    const graphile = await graphileWorker(admin, queueJobs);
    const graphileWorkerJobsPerSecond = graphile.jobsPerSecond;
    log(
      `  graphile-worker ${version('graphile-worker')}: ${queueJobs} no-op jobs → ${graphileWorkerJobsPerSecond.toFixed(0)} jobs/s${cpuNote(graphile.cpuMicrosPerJob, 'job')}`,
    );
    // The same size as our 100,000-greeting run, for a like-for-like figure beside the issue's.
    const graphile100k = await graphileWorker(admin, 100_000);
    const graphileWorker100k = graphile100k.jobsPerSecond;
    log(
      `  graphile-worker ${version('graphile-worker')}: 100000 no-op jobs → ${graphileWorker100k.toFixed(0)} jobs/s${cpuNote(graphile100k.cpuMicrosPerJob, 'job')}`,
    );
    const pgBossJobsPerSecond = await pgBoss(admin, queueJobs);
    log(
      `  pg-boss ${version('pg-boss')}: ${queueJobs} no-op jobs → ${pgBossJobsPerSecond.toFixed(0)} jobs/s`,
    );

    const endToEndRuns: Record<string, unknown>[] = [];
    for (const size of [10_000, 100_000]) {
      const r = await endToEnd(admin, { n: size });
      endToEndRuns.push({
        n: size,
        ...r,
        tasksPerSecond: Math.round(r.tasksPerSecond),
        seconds: Math.round(r.seconds * 10) / 10,
      });
      log(
        `  hello_world n=${size}: ${r.status}, ${r.tasks} tasks in ${r.seconds.toFixed(1)} s → ${r.tasksPerSecond.toFixed(0)} tasks/s${cpuNote(r.cpuMicrosPerTask)}`,
      );
    }
    const tasksPerSecond = Math.max(...endToEndRuns.map((r) => r.tasksPerSecond as number));
    log(
      `  ours (the driver's defaults: up to 64 tasks per message) / graphile-worker: ${(tasksPerSecond / graphileWorkerJobsPerSecond).toFixed(2)}x (target ≥ 2x)`,
    );
    // 500 slots per worker: what this bench ran as its defaults before workers prefetched.
    const slots500 = await endToEnd(admin, { n: 100_000, concurrency: 500 });
    log(
      `  hello_world n=100000, 500 slots per worker: ${slots500.status}, ${slots500.tasksPerSecond.toFixed(0)} tasks/s; defaults / this ${(tasksPerSecond / slots500.tasksPerSecond).toFixed(2)}${cpuNote(slots500.cpuMicrosPerTask)}`,
    );
    // The defaults before the transport recommended packs: one message per task.
    const single = await endToEnd(admin, { n: 100_000, packTasks: 1 });
    log(
      `  hello_world n=100000, one message per task (packTasks: 1): ${single.status}, ${single.tasksPerSecond.toFixed(0)} tasks/s; defaults / this ${(tasksPerSecond / single.tasksPerSecond).toFixed(2)}${cpuNote(single.cpuMicrosPerTask)}`,
    );
    // The defaults with a queue message per pack, as before the task rows were claimed in place.
    const messages = await endToEnd(admin, { n: 100_000, claimTaskRows: false });
    log(
      `  hello_world n=100000, defaults with claimTaskRows: false: ${messages.status}, ${messages.tasksPerSecond.toFixed(0)} tasks/s; defaults / this ${(tasksPerSecond / messages.tasksPerSecond).toFixed(2)}${cpuNote(messages.cpuMicrosPerTask)}`,
    );
    // The driver README's high-throughput settings: 64 tasks per message, and two workers × 2,000
    // slots (31 packs of 64 in flight each).
    const packTasks = 64;
    const packed = await endToEnd(admin, { n: 100_000, packTasks, concurrency: 2000 });
    log(
      `  hello_world n=100000, high-throughput settings (${packTasks} tasks per message): ${packed.status}, ${packed.tasks} tasks in ${packed.seconds.toFixed(1)} s → ${packed.tasksPerSecond.toFixed(0)} tasks/s = ${(packed.tasksPerSecond / graphileWorkerJobsPerSecond).toFixed(2)}x graphile-worker (target ≥ 2x; ${(packed.tasksPerSecond / graphileWorker100k).toFixed(2)}x at 100,000 jobs)${cpuNote(packed.cpuMicrosPerTask)}`,
    );
    const floorTasks = 100_000;
    const { tasksPerSecond: floorTasksPerSecond } = await statementFloor(
      admin,
      floorTasks,
      packTasks,
    );
    log(
      `  statement floor (insert + pack admission + barrier, no engine, no queue): ${floorTasks} tasks → ${floorTasksPerSecond.toFixed(0)} tasks/s = ${(floorTasksPerSecond / graphileWorkerJobsPerSecond).toFixed(2)}x graphile-worker; high-throughput run / floor ${(packed.tasksPerSecond / floorTasksPerSecond).toFixed(2)}`,
    );

    return {
      scenario: 'postgres',
      rows: n,
      insertRowsPerSecond: Math.round(insertRowsPerSecond),
      copyRowsPerSecond: Math.round(copyRowsPerSecond),
      insertToCopyRatio: Math.round(ratio * 100) / 100,
      tasksPerSecond,
      endToEnd: endToEndRuns,
      graphileWorkerJobsPerSecond: Math.round(graphileWorkerJobsPerSecond),
      graphileWorker100kJobsPerSecond: Math.round(graphileWorker100k),
      graphileWorkerCpuMicrosPerJob: graphile.cpuMicrosPerJob,
      graphileWorker100kCpuMicrosPerJob: graphile100k.cpuMicrosPerJob,
      pgBossJobsPerSecond: Math.round(pgBossJobsPerSecond),
      tasksToGraphileWorkerRatio: ratioOf(tasksPerSecond, graphileWorkerJobsPerSecond),
      singleMessagePerTask: {
        packTasks: 1,
        n: 100_000,
        tasksPerSecond: Math.round(single.tasksPerSecond),
        status: single.status,
        cpuMicrosPerTask: single.cpuMicrosPerTask,
      },
      defaultsToSingleMessageRatio: ratioOf(tasksPerSecond, single.tasksPerSecond),
      queueMessages: {
        claimTaskRows: false,
        n: 100_000,
        tasksPerSecond: Math.round(messages.tasksPerSecond),
        status: messages.status,
        cpuMicrosPerTask: messages.cpuMicrosPerTask,
      },
      defaultsToQueueMessagesRatio: ratioOf(tasksPerSecond, messages.tasksPerSecond),
      slots500: {
        concurrency: 500,
        n: 100_000,
        tasksPerSecond: Math.round(slots500.tasksPerSecond),
        status: slots500.status,
        cpuMicrosPerTask: slots500.cpuMicrosPerTask,
      },
      packed: {
        packTasks,
        concurrency: 2000,
        n: 100_000,
        tasksPerSecond: Math.round(packed.tasksPerSecond),
        seconds: Math.round(packed.seconds * 10) / 10,
        status: packed.status,
        cpuMicrosPerTask: packed.cpuMicrosPerTask,
      },
      packedToGraphileWorkerRatio: ratioOf(packed.tasksPerSecond, graphileWorkerJobsPerSecond),
      packedToGraphileWorker100kRatio: ratioOf(packed.tasksPerSecond, graphileWorker100k),
      floorTasksPerSecond: Math.round(floorTasksPerSecond),
      floorToGraphileWorkerRatio: ratioOf(floorTasksPerSecond, graphileWorkerJobsPerSecond),
      versions: {
        postgres: serverVersion,
        node: process.version,
        'graphile-worker': version('graphile-worker'),
        'pg-boss': version('pg-boss'),
        pg: version('pg'),
      },
    };
  } finally {
    await admin.end();
  }
}
