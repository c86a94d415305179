/**
 * `fairness`: how long a one-task job waits behind a big one on the same path, and what the
 * fairness window (`batching.window`) costs the big job's throughput.
 *
 * Per path (`memory`, `postgres`, `storagequeue`, `servicebus`), on one Switchyard with two
 * `work()` loops and the engine's default settings, twice — with `batching: { window: false }`
 * (every task sent at fan-out) and with the default window:
 *
 * - `soloMs`: a one-stage job of one no-op task, submit → `waitFor` succeeded, alone (median of 3);
 * - `behindBigMs`: the same job submitted as soon as a big `hello_world` (two stages of n no-op
 *   tasks) has fanned out its first stage (`getJob` shows it sealed), submit → done;
 * - `behindBigHighMs`: the same again with `priority: 'high'`, submitted at the same moment (the
 *   transports with lanes: every one here, Service Bus and Storage Queues with `priorityLanes`);
 * - the big job's tasks/s (both stages' tasks over the seconds from its submit to its end);
 * - on PostgreSQL, the small job's steps alone and behind the big one (`soloSteps`,
 *   `behindBigSteps`: when its stage started, its task was offered, claimed, run and recorded, its
 *   stage completed and it finished, from its rows' timestamps): where the wait is spent;
 * - this process's event-loop delay during the solo runs and behind the big job
 *   (`soloLoopDelayMs`, `behindLoopDelayMs`: p50, p99, max): what each of the small job's hops
 *   waits for at least.
 * - on PostgreSQL and Storage Queues, a bare round trip to the service (`SELECT 1`; a queue's
 *   properties) sampled every 10 ms during the solo runs and behind the big job (`soloProbeMs`,
 *   `behindProbeMs`): how much slower the service answers under the big job's load, whatever the
 *   engine does — each of the small job's hops is one or more such round trips.
 *
 * With `rounds` > 1 the two settings alternate which runs first and the figures are medians.
 *
 * Memory: memoryStore + memoryTransport. PostgreSQL (`DATABASE_URL`): postgresStore +
 * postgresTransport in a fresh schema per run, dropped after. Storage Queues and Service Bus:
 * Azurite and the repository's emulator, started for each run on a free port with no latency or
 * throttling in front, and stopped after it, with memoryStore (so the figures are the transport's).
 * @module
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { QueueClient } from '@azure/storage-queue';
import {
  createSwitchyard,
  defineJob,
  defineTask,
  FINISHED_JOB_STATUSES,
  type JobView,
  memoryStore,
  memoryTransport,
  type Priority,
  silentLogger,
} from '@switchyard/core';
import type { Store, Transport } from '@switchyard/core/driver';
import { postgresStore, postgresTransport } from '@switchyard/driver-postgres';
import { serviceBusTransport } from '@switchyard/driver-servicebus';
import { storageQueueTransport } from '@switchyard/driver-storagequeue';
import { helloWorld } from '@switchyard/example-jobs';
import { startEmulator } from '@switchyard/servicebus-emulator';
import pg from 'pg';
import { startAzurite } from '../../packages/driver-storagequeue/test/azurite.js';
import { round } from './hello.js';
import { cpuMeter, DATABASE_URL, dropSchema, schemaName } from './lib/postgres.js';

export const FAIRNESS_PATHS = ['memory', 'postgres', 'storagequeue', 'servicebus'] as const;
export type FairnessPath = (typeof FAIRNESS_PATHS)[number];

/**
 * The big job's n per path: each path's run stays within about two minutes on two cores. Azurite
 * runs at ~200-300 tasks/s here and slows down sharply once one instance has handled some 10,000
 * messages (n = 5,000 ran at 35 tasks/s), so its n is small.
 */
export const FAIRNESS_DEFAULT_N: Readonly<Record<FairnessPath, number>> = {
  memory: 100_000,
  postgres: 100_000,
  storagequeue: 2_000,
  servicebus: 10_000,
};

/** Arguments of {@link runFairnessBench}. */
export interface FairnessBenchArgs {
  /** @defaultValue all four */
  paths?: readonly FairnessPath[];
  /** The big job's n on every path. @defaultValue {@link FAIRNESS_DEFAULT_N} */
  n?: number;
  /**
   * Rounds of the two settings per path, the first one first in odd rounds, second in even ones
   * (a drift in the machine's load favours neither); the figures are the rounds' medians.
   * @defaultValue 1
   */
  rounds?: number;
  /** The window measured against `false`. @defaultValue the engine's default */
  window?: number;
  /** Each `work()` loop's `prefetch`. @defaultValue the engine's (the transport's recommendation) */
  prefetch?: number;
  log: (line: string) => void;
}

/** What one {@link measure} call runs. */
interface MeasureSpec {
  path: FairnessPath;
  n: number;
  window: WindowSetting;
  prefetch: number | undefined;
}

const WORKERS = 2;
/** Each `work()` loop's; 2 × 512 task slots is half the default window, as its docs ask. */
const CONCURRENCY = 512;
const SOLO_RUNS = 3;
/**
 * A `hello_world` of this n (or the big n, if smaller) warms each Switchyard up first, unmeasured:
 * with less, the first run of a process is slower per task than the next (by up to 1.5x on the
 * memory path after 2,000 warm-up tasks), which would favour the setting measured second. Small
 * on Azurite, which slows down with every message it has handled.
 */
const WARM_UP_N: Readonly<Record<FairnessPath, number>> = {
  memory: 20_000,
  postgres: 10_000,
  storagequeue: 1_000,
  servicebus: 5_000,
};
/**
 * `waitFor`'s poll of the small job bounds how finely its time is read: 1 ms on the memory path
 * (a poll costs nothing there, and the job takes a few ms), 5 ms elsewhere (each poll is a store
 * round trip, taken while the big job runs).
 */
const POLL_MS = { small: 5, smallOnMemory: 1, big: 20, fanOut: 2 } as const;
/** A run that takes longer than this has stalled: it fails instead of hanging the bench. */
const TIMEOUT_MS = 15 * 60_000;

const noop = defineTask({ name: 'fairness_noop', handler: () => 'ok' });

/** The small job: one stage of one no-op task. */
export const oneTask = defineJob({
  name: 'one_task',
  stages: (job) => job.stage({ name: 'only', task: noop, fanOut: () => [{}] }),
});

/** A store and a transport for one run, and how to drop what the run left behind. */
interface Drivers {
  store: Store;
  transport: Transport;
  /**
   * PostgreSQL only: when each step of a job happened, read from its rows' timestamps, ms after
   * the job's row was created (see {@link JobSteps}).
   */
  steps?(jobId: string): Promise<JobSteps>;
  /**
   * One bare round trip to the path's service that no job waits for (PostgreSQL: `SELECT 1` on a
   * pool of its own; Azurite: a queue's properties, through the SDK's own client). Timed
   * alone and behind the big job, it says how much of the small job's wait is the service's
   * answer time under the big job's load rather than anything the engine does.
   */
  probe?(): Promise<unknown>;
  /** After the Switchyard is closed. */
  dispose(): Promise<void>;
}

/**
 * A one-task job's steps, ms after its row was created: its stage started (the stage message was
 * received), its task offered and claimed (task-row claims), the task's handler started and its
 * outcome recorded, the stage completed, the job finished. A step the path does not record is
 * absent.
 */
export type JobSteps = Partial<
  Record<
    | 'stageStarted'
    | 'offered'
    | 'claimed'
    | 'taskStarted'
    | 'taskDone'
    | 'stageCompleted'
    | 'finished',
    number
  >
>;

/** Reads a one-task job's {@link JobSteps} from its rows in `schema`. */
async function jobSteps(admin: pg.Pool, schema: string, jobId: string): Promise<JobSteps> {
  const ms = (column: string) =>
    `round((extract(epoch from ${column} - j.created_at) * 1000)::numeric, 1)::float8`;
  const { rows } = await admin.query<Record<keyof JobSteps, number | null>>(
    `SELECT ${ms('st.started_at')} AS "stageStarted", ${ms('o.offered_at')} AS offered,
            ${ms('o.claimed_at')} AS claimed, ${ms('t.started_at')} AS "taskStarted",
            ${ms('t.updated_at')} AS "taskDone", ${ms('st.completed_at')} AS "stageCompleted",
            ${ms('j.finished_at')} AS finished
       FROM "${schema}".jobs j
       JOIN "${schema}".stages st ON st.job_id = j.id
       LEFT JOIN "${schema}".task_offers o ON o.job_id = j.id
       LEFT JOIN "${schema}".tasks t ON t.job_id = j.id
      WHERE j.id = $1
      LIMIT 1`,
    [jobId],
  );
  return Object.fromEntries(
    Object.entries(rows[0] ?? {}).filter(([, v]) => v !== null),
  ) as JobSteps;
}

/** A path's fresh drivers per run (and service, for the emulators), and what the path holds open. */
interface PathEnv {
  store: string;
  transport: string;
  fresh(): Promise<Drivers>;
  close(): Promise<void>;
}

async function openPath(path: FairnessPath): Promise<PathEnv> {
  const prefix = `fair-${randomBytes(3).toString('hex')}`;
  switch (path) {
    case 'memory':
      return {
        store: 'memory',
        transport: 'memory',
        fresh: async () => ({
          store: memoryStore(),
          transport: memoryTransport(),
          dispose: async () => {},
        }),
        close: async () => {},
      };
    case 'postgres': {
      const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
      try {
        await admin.query('SELECT 1');
      } catch (err) {
        await admin.end();
        throw err;
      }
      return {
        store: 'postgres',
        transport: 'postgres',
        fresh: async () => {
          const schema = schemaName('fair');
          return {
            store: postgresStore({ connectionString: DATABASE_URL, schema }),
            transport: postgresTransport({ connectionString: DATABASE_URL, schema }),
            steps: (jobId) => jobSteps(admin, schema, jobId),
            probe: () => admin.query('SELECT 1'),
            dispose: () => dropSchema(admin, schema),
          };
        },
        close: () => admin.end(),
      };
    }
    // A fresh service per run: Azurite slows down with what earlier runs left in its store, which
    // would favour whichever setting runs first.
    case 'storagequeue':
      return {
        store: 'memory',
        transport: 'storagequeue (Azurite in a child process, started per run)',
        fresh: async () => {
          const azurite = await startAzurite();
          const probed = new QueueClient(azurite.connectionString, `${prefix}-s`);
          return {
            store: memoryStore(),
            transport: storageQueueTransport({
              connectionString: azurite.connectionString,
              queues: { stage: `${prefix}-s`, task: `${prefix}-t` },
              priorityLanes: true,
            }),
            probe: () => probed.getProperties(),
            dispose: () => azurite.stop(),
          };
        },
        close: async () => {},
      };
    case 'servicebus':
      return {
        store: 'memory',
        transport: 'servicebus (the emulator in this process, started per run)',
        fresh: async () => {
          const emulator = await startEmulator({ port: 0 });
          return {
            store: memoryStore(),
            transport: serviceBusTransport({
              connectionString: emulator.connectionString,
              queues: { stage: `${prefix}-jobs`, task: `${prefix}-tasks` },
              priorityLanes: true,
            }),
            dispose: () => emulator.close(),
          };
        },
        close: async () => {},
      };
  }
}

/** A window setting: `false` (off), a number, or `undefined` (the engine's default). */
type WindowSetting = false | number | undefined;

function makeYard(drivers: Drivers, window: WindowSetting) {
  return createSwitchyard({
    jobs: [helloWorld, oneTask],
    store: drivers.store,
    transports: [drivers.transport],
    logger: silentLogger,
    reconcile: { intervalMs: 0 },
    ...(window === undefined ? {} : { batching: { window } }),
  });
}
type Yard = ReturnType<typeof makeYard>;

const uniqueKey = (what: string) => `fairness-${what}-${randomUUID()}`;
const finished = (view: JobView | undefined) =>
  view !== undefined && (FINISHED_JOB_STATUSES as readonly string[]).includes(view.status);

function checkSucceeded(view: JobView, what: string): void {
  if (view.status !== 'succeeded')
    throw new Error(`${what} ended ${view.status}: ${view.error?.message ?? 'no error'}`);
}

/** Submits the one-task job and waits for it: milliseconds from submit to done, and its id. */
async function smallJob(
  yard: Yard,
  pollIntervalMs: number,
  priority: Priority = 'normal',
): Promise<{ ms: number; jobId: string }> {
  const t0 = performance.now();
  const { jobId } = await yard.submit('one_task', undefined, {
    idempotencyKey: uniqueKey('small'),
    priority,
  });
  const view = await yard.waitFor(jobId, {
    pollIntervalMs,
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const ms = performance.now() - t0;
  checkSucceeded(view, 'one_task');
  return { ms, jobId };
}

/**
 * Polls the job until its first stage's fan-out is over (the stage sealed: without a window every
 * task of it is in the queue), or the job has ended — the worst moment to submit behind it.
 * Returns the tasks created by then.
 */
async function firstStageFannedOut(yard: Yard, jobId: string): Promise<number> {
  const deadline = performance.now() + TIMEOUT_MS;
  for (;;) {
    const view = await yard.getJob(jobId);
    const created = view?.stages[0]?.total ?? 0;
    if (view?.stages[0]?.sealed === true || finished(view)) return created;
    if (performance.now() > deadline) throw new Error(`job ${jobId} never started its fan-out`);
    await sleep(POLL_MS.fanOut);
  }
}

/** One Switchyard's figures: window off (`false`) or the default. */
export interface FairnessRun {
  /** `off`, `default`, or the window's size. */
  window: string;
  soloRunsMs: number[];
  soloMs: number;
  behindBigMs: number;
  /** The small job with `priority: 'high'`, submitted at the same moment as the normal one. */
  behindBigHighMs: number;
  /**
   * PostgreSQL: the steps of the last solo run and of the (normal-priority) job behind the big
   * one, ms after each job's row was created.
   */
  soloSteps?: JobSteps;
  behindBigSteps?: JobSteps;
  /** The big job's first-stage tasks created when the small job was submitted. */
  bigTasksCreatedAtSmallSubmit: number;
  /** From the big job's submit to its fan-out being seen under way. */
  bigFanOutSeenAfterMs: number;
  bigTasks: number;
  bigSeconds: number;
  bigTasksPerSecond: number;
  /**
   * CPU µs per task of the big job's run: this process (with the Service Bus emulator, which runs
   * in it; without Azurite, a child process), and the server on a local PostgreSQL.
   */
  bigCpuMicrosPerTask: { node: number; postgres?: number };
  /**
   * How late this process's event loop ran, ms (median, 99th percentile, most): during the solo
   * runs, and from the small jobs' submit behind the big one to their end. Each of a small job's
   * hops (its stage message, its task, its finish) waits for the loop at least this long.
   */
  soloLoopDelayMs: LoopDelay;
  behindLoopDelayMs: LoopDelay;
  /**
   * PostgreSQL and Storage Queues: the service's bare round trip ({@link Drivers.probe}), ms,
   * sampled every {@link PROBE_EVERY_MS} ms during the solo runs and behind the big job.
   */
  soloProbeMs?: Percentiles;
  behindProbeMs?: Percentiles;
}

/** A sample's median, 99th percentile and largest value, and its size. */
export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}

/** How often {@link probeMeter} times a round trip. */
const PROBE_EVERY_MS = 10;

/** Times `probe` every {@link PROBE_EVERY_MS} ms, one at a time, from now until `stop()`. */
function probeMeter(probe: () => Promise<unknown>): { stop(): Promise<Percentiles> } {
  const times: number[] = [];
  let stopped = false;
  const sampling = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      await probe();
      times.push(performance.now() - t0);
      await sleep(PROBE_EVERY_MS);
    }
  })();
  // A failed round trip ends the sampling; stop() rethrows it.
  sampling.catch(() => {});
  return {
    async stop() {
      stopped = true;
      await sampling;
      const sorted = times.sort((a, b) => a - b);
      const at = (q: number) =>
        round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0, 1);
      return {
        p50: at(0.5),
        p99: at(0.99),
        max: round(sorted.at(-1) ?? 0, 1),
        samples: sorted.length,
      };
    },
  };
}

/** An event loop's delay, ms. */
export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
}

/** Measures the event loop's delay from now until `stop()`, at 1 ms resolution. */
function loopDelayMeter(): { stop(): LoopDelay } {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  return {
    stop() {
      histogram.disable();
      const ms = (ns: number) => round(ns / 1e6, 1);
      return {
        p50: ms(histogram.percentile(50)),
        p99: ms(histogram.percentile(99)),
        max: ms(histogram.max),
      };
    },
  };
}

async function measure(
  env: PathEnv,
  { path, n, window, prefetch }: MeasureSpec,
  log: (line: string) => void,
): Promise<FairnessRun> {
  const label = window === false ? 'off' : window === undefined ? 'default' : String(window);
  const poll = path === 'memory' ? POLL_MS.smallOnMemory : POLL_MS.small;
  const drivers = await env.fresh();
  const yard = makeYard(drivers, window);
  const stop = new AbortController();
  let working: Promise<void>[] = [];
  try {
    await drivers.transport.ping?.(); // connects and creates the queues
    working = Array.from({ length: WORKERS }, () =>
      yard.work({
        concurrency: CONCURRENCY,
        ...(prefetch === undefined ? {} : { prefetch }),
        signal: stop.signal,
      }),
    );
    // Warm-up: JIT, connections, receivers attached; not measured.
    const warm = await yard.submit(
      'hello_world',
      { n: Math.min(WARM_UP_N[path], n), workMs: 0 },
      { idempotencyKey: uniqueKey('warm') },
    );
    checkSucceeded(
      await yard.waitFor(warm.jobId, {
        pollIntervalMs: POLL_MS.big,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      }),
      'warm-up hello_world',
    );
    await smallJob(yard, poll);

    const soloRunsMs: number[] = [];
    let lastSolo = '';
    const soloLoop = loopDelayMeter();
    const soloProbe = drivers.probe && probeMeter(drivers.probe);
    for (let i = 0; i < SOLO_RUNS; i++) {
      const solo = await smallJob(yard, poll);
      soloRunsMs.push(round(solo.ms, 1));
      lastSolo = solo.jobId;
    }
    const soloLoopDelayMs = soloLoop.stop();
    const soloProbeMs = await soloProbe?.stop();
    const soloMs = round(median(soloRunsMs), 1);

    const cpu = cpuMeter();
    const t0 = performance.now();
    const big = await yard.submit(
      'hello_world',
      { n, workMs: 0 },
      { idempotencyKey: uniqueKey('big') },
    );
    const created = await firstStageFannedOut(yard, big.jobId);
    const fanOutSeen = performance.now() - t0;
    const behindLoop = loopDelayMeter();
    const behindProbe = drivers.probe && probeMeter(drivers.probe);
    const [behind, behindHigh] = await Promise.all([
      smallJob(yard, poll),
      smallJob(yard, poll, 'high'),
    ]);
    const behindLoopDelayMs = behindLoop.stop();
    const behindProbeMs = await behindProbe?.stop();
    const behindBigMs = behind.ms;
    const behindBigHighMs = behindHigh.ms;
    const view = await yard.waitFor(big.jobId, {
      pollIntervalMs: POLL_MS.big,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const bigSeconds = (performance.now() - t0) / 1000;
    checkSucceeded(view, `hello_world n=${n}`);
    const bigTasks = view.stages.reduce((sum, s) => sum + s.succeeded + s.failed, 0);
    const cpuPerTask = cpu.perItem(bigTasks);
    const run: FairnessRun = {
      window: label,
      soloRunsMs,
      soloMs,
      behindBigMs: round(behindBigMs, 1),
      behindBigHighMs: round(behindBigHighMs, 1),
      bigTasksCreatedAtSmallSubmit: created,
      bigFanOutSeenAfterMs: round(fanOutSeen, 1),
      bigTasks,
      bigSeconds: round(bigSeconds),
      bigTasksPerSecond: Math.round(bigTasks / bigSeconds),
      bigCpuMicrosPerTask: path === 'postgres' ? cpuPerTask : { node: cpuPerTask.node },
      soloLoopDelayMs,
      behindLoopDelayMs,
      ...(soloProbeMs && behindProbeMs ? { soloProbeMs, behindProbeMs } : {}),
    };
    if (drivers.steps) {
      run.soloSteps = await drivers.steps(lastSolo);
      run.behindBigSteps = await drivers.steps(behind.jobId);
      log(
        `  ${path} window ${label.padEnd(7)}: steps (ms after the job's row) solo ${JSON.stringify(run.soloSteps)}; behind ${JSON.stringify(run.behindBigSteps)}`,
      );
    }
    if (soloProbeMs && behindProbeMs)
      log(
        `  ${path} window ${label.padEnd(7)}: the service's bare round trip (p50 / p99 / max ms) solo ${loopNote(soloProbeMs)} (${soloProbeMs.samples} samples), behind the big job ${loopNote(behindProbeMs)} (${behindProbeMs.samples})`,
      );
    log(
      `  ${path} window ${label.padEnd(7)}: event loop delay (p50 / p99 / max ms) solo ${loopNote(soloLoopDelayMs)}, behind the big job ${loopNote(behindLoopDelayMs)}`,
    );
    log(
      `  ${path} window ${label.padEnd(7)}: solo ${soloRunsMs.join(' / ')} ms (median ${soloMs}); behind hello_world n=${n}: ${run.behindBigMs} ms (${round(run.behindBigMs / soloMs)}x; ${created} tasks created at its submit), with priority high ${run.behindBigHighMs} ms (${round(run.behindBigHighMs / soloMs)}x); big job ${bigTasks} tasks in ${run.bigSeconds} s = ${run.bigTasksPerSecond} tasks/s, ${cpuPerTask.node} µs CPU/task in Node${cpuPerTask.postgres === undefined || path !== 'postgres' ? '' : ` + ${cpuPerTask.postgres} µs PostgreSQL`}`,
    );
    return run;
  } finally {
    stop.abort();
    await Promise.allSettled(working);
    try {
      await yard.close();
    } finally {
      await drivers.dispose();
    }
  }
}

const loopNote = (d: LoopDelay | Percentiles) => `${d.p50} / ${d.p99} / ${d.max}`;

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One path's figures, medians over the rounds (then the runs behind them). */
export interface FairnessPathResult {
  path: FairnessPath;
  n: number;
  /** Solo, with the default window. */
  soloMs: number;
  /** Behind the big job, with the default window. */
  behindBigMs: number;
  /** `behindBigMs / soloMs`. */
  ratio: number;
  /** Behind the big job with `priority: 'high'`, with the default window. */
  behindBigHighMs: number;
  /** `behindBigHighMs / soloMs`. */
  ratioHigh: number;
  /** Behind the big job with `priority: 'high'`, window off. */
  behindBigHighMsWithoutWindow: number;
  behindBigMsWithoutWindow: number;
  /** `behindBigMsWithoutWindow / soloMsWithoutWindow` (solo measured with the window off). */
  ratioWithoutWindow: number;
  /** The big job's tasks/s with `window: false`. */
  bigTasksPerSecondBefore: number;
  /** The big job's tasks/s with the default window. */
  bigTasksPerSecondAfter: number;
  /** After over before. */
  throughputRatio: number;
  soloMsWithoutWindow: number;
  runs: { withoutWindow: FairnessRun[]; withWindow: FairnessRun[] };
}

/** Runs the scenario and returns `{ scenario, node, settings, paths }`. */
export async function runFairnessBench(args: FairnessBenchArgs) {
  const paths = args.paths ?? FAIRNESS_PATHS;
  const { log } = args;
  const rounds = args.rounds ?? 1;
  const results: FairnessPathResult[] = [];
  const stores: Partial<Record<FairnessPath, string>> = {};
  const transports: Partial<Record<FairnessPath, string>> = {};
  for (const path of paths) {
    const n = args.n ?? FAIRNESS_DEFAULT_N[path];
    log(
      `${path}: one_task alone and behind hello_world n=${n} (${2 * n} tasks), window off and default${rounds > 1 ? `, ${rounds} rounds` : ''}`,
    );
    const env = await openPath(path);
    stores[path] = env.store;
    transports[path] = env.transport;
    const before: FairnessRun[] = [];
    const after: FairnessRun[] = [];
    try {
      for (let r = 0; r < rounds; r++) {
        if (rounds > 1) log(`  round ${r + 1} of ${rounds}`);
        const on = args.window;
        const order: WindowSetting[] = r % 2 === 0 ? [false, on] : [on, false];
        for (const window of order) {
          const run = await measure(env, { path, n, window, prefetch: args.prefetch }, log);
          (window === false ? before : after).push(run);
        }
      }
    } finally {
      await env.close();
    }
    const of = (
      runs: FairnessRun[],
      figure: 'soloMs' | 'behindBigMs' | 'behindBigHighMs' | 'bigTasksPerSecond',
    ) => median(runs.map((run) => run[figure]));
    const behindBigHighMs = round(of(after, 'behindBigHighMs'), 1);
    const soloMs = round(of(after, 'soloMs'), 1);
    const behindBigMs = round(of(after, 'behindBigMs'), 1);
    const soloMsWithoutWindow = round(of(before, 'soloMs'), 1);
    const behindBigMsWithoutWindow = round(of(before, 'behindBigMs'), 1);
    const bigTasksPerSecondBefore = Math.round(of(before, 'bigTasksPerSecond'));
    const bigTasksPerSecondAfter = Math.round(of(after, 'bigTasksPerSecond'));
    results.push({
      path,
      n,
      soloMs,
      behindBigMs,
      ratio: round(behindBigMs / soloMs),
      behindBigHighMs,
      ratioHigh: round(behindBigHighMs / soloMs),
      behindBigHighMsWithoutWindow: round(of(before, 'behindBigHighMs'), 1),
      behindBigMsWithoutWindow,
      ratioWithoutWindow: round(behindBigMsWithoutWindow / soloMsWithoutWindow),
      bigTasksPerSecondBefore,
      bigTasksPerSecondAfter,
      throughputRatio: round(bigTasksPerSecondAfter / bigTasksPerSecondBefore),
      soloMsWithoutWindow,
      runs: { withoutWindow: before, withWindow: after },
    });
  }
  log("summary (behind = a one-task job submitted once the big job's first stage is fanned out):");
  for (const r of results) {
    log(
      `  ${r.path.padEnd(12)} n=${String(r.n).padStart(6)}: solo ${r.soloMs} ms; behind the big job ${r.behindBigMs} ms = ${r.ratio}x with the default window, ${r.behindBigMsWithoutWindow} ms = ${r.ratioWithoutWindow}x without; with priority high ${r.behindBigHighMs} ms = ${r.ratioHigh}x (${r.behindBigHighMsWithoutWindow} ms without the window); big job ${r.bigTasksPerSecondAfter} tasks/s with the window, ${r.bigTasksPerSecondBefore} without (${r.throughputRatio}x)`,
    );
  }
  return {
    scenario: 'fairness',
    node: process.version,
    settings: {
      workers: WORKERS,
      concurrency: CONCURRENCY,
      soloRuns: SOLO_RUNS,
      rounds,
      warmUp: `per Switchyard, unmeasured: hello_world n = min(n, ${JSON.stringify(WARM_UP_N)}[path]), then one one_task job`,
      windowBefore: false,
      windowAfter: args.window ?? 'engine default (no window option)',
      prefetch: args.prefetch ?? "engine default (the transport's recommendation)",
      order:
        'window off first in odd rounds, default first in even ones; a fresh Switchyard and drivers for each run',
      pollIntervalMs: POLL_MS,
      n: Object.fromEntries(results.map((r) => [r.path, r.n])),
      stores,
      transports,
      ...(paths.includes('postgres')
        ? {
            database: `${DATABASE_URL.replace(/:[^:@/]*@/, ':***@')}, a fresh schema per run, dropped after`,
          }
        : {}),
      engine: 'defaults, reconcile: { intervalMs: 0 }, logger: silentLogger',
    },
    paths: results,
  };
}
