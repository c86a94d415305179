/**
 * The crash harness: submits chaos jobs on one path, runs 2–4 real worker processes, SIGKILLs them
 * at random moments and at chosen ones (inside a fan-out, between the barrier and the stage
 * advance, right after the advance), restarts them, and checks every invariant afterwards.
 * @module
 */

import { setTimeout as sleep } from 'node:timers/promises';
import {
  createSwitchyard,
  PRIORITIES,
  type RetentionOptions,
  type Switchyard,
  silentLogger,
  type TelemetryOptions,
} from '@switchyard/core';
import { seededRandom } from '@switchyard/core/testing';
import { postgresStore } from '@switchyard/driver-postgres';
import pg from 'pg';
import {
  killWorker,
  spawnWorker,
  stopWorker,
  type WorkerLine,
  type WorkerProcess,
} from './fleet.js';
import { verifyFlow, verifyNoSlotHeld } from './flow-verify.js';
import { CHAOS_JOB, CHAOS_PLAIN_JOB, type ChaosFlow, chaosJobs } from './job.js';
import { submitterTelemetry, TraceCheck, type TraceReport } from './otel.js';
import {
  makeTransport,
  type PathName,
  type PathService,
  RECONCILE_OLDER_THAN_MS,
  tryStartPath,
} from './paths.js';
import { chaosTablesSql } from './recording.js';
import { type SubmittedJob, verify } from './verify.js';
import type { WorkerConfig } from './worker.js';

export type KillKind = 'random' | 'fanout' | 'advanced' | 'stage-complete';

export interface CampaignOptions {
  path: PathName;
  /** Total SIGKILLs to deliver (the campaign runs jobs until it has). */
  kills: number;
  /** Worker processes (2–4). @defaultValue 3 */
  workers?: number;
  /** Jobs submitted at once per run. @defaultValue 2 */
  jobsPerRun?: number;
  /** First-stage tasks per job. @defaultValue 400 */
  n?: number;
  /** Kills per run at most. @defaultValue 6 */
  killsPerRun?: number;
  /** Stop after this many runs even if kills remain (a bounded test). */
  maxRuns?: number;
  /** Visibility timeout / lock duration, ms. @defaultValue 1500 */
  visibilityMs?: number;
  /**
   * Tasks per task message (`batching.packTasks`). @defaultValue the path's transport's
   * recommendation (PostgreSQL: 64, at most ⌈chunk / 16⌉ per message; the others: 1)
   */
  packTasks?: number;
  /**
   * The fairness window (`batching.window`): small, so that kills land between a stage's
   * releases. @defaultValue the engine's
   */
  window?: number;
  /** Tasks each worker may hold beyond its slots (`work({ prefetch })`). @defaultValue the engine's */
  prefetch?: number;
  /** Seed of the job params and kill decisions. */
  seed?: number;
  /** Workers register an OpenTelemetry SDK; their spans are checked afterwards (`otel.ts`). */
  otel?: boolean;
  /**
   * Flow limits of the first two stages (`--key-limit`): every handler run's key, start and end
   * are recorded and checked, and after each run no key slot may be held past its lease.
   */
  flow?: CampaignFlow;
  /** Upper bound of a task's random duration, ms. @defaultValue the job's (4) */
  maxWorkMs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** A campaign's flow limits and its workers' key-slot lease. */
export interface CampaignFlow extends ChaosFlow {
  /** @defaultValue 2000 */
  slotLeaseMs?: number;
}

/** What the flow checks saw over a campaign. */
export interface FlowReport {
  /** Flow-limited handler runs checked. */
  runs: number;
  /** Runs cut by a kill (counted until their worker was seen dead). */
  cutByKill: number;
  /** Most runs of one key at once. */
  maxConcurrent: number;
  /** Rate-limited admissions checked. */
  admissions: number;
  minStartGapMs: number | null;
}

export interface PathReport {
  path: PathName;
  skipped?: string;
  runs: number;
  jobs: number;
  /** Of them, jobs without finalize. */
  plainJobs: number;
  tasks: number;
  kills: number;
  killsBy: Record<KillKind, number>;
  violations: string[];
  lost: number;
  finalizeCalls: number;
  unrecorded: number;
  /**
   * Deadlocks the server counted in the campaign's own database (`pg_stat_database.deadlocks`,
   * after minus before); any is also a violation.
   */
  deadlocks: number;
  /** Tasks with more recorded attempts than handler runs, in runs with kills (which explain them). */
  attemptsBeyondRuns: number;
  /** Tasks recorded with more than one attempt (injected failures, kills). */
  retriedTasks: number;
  /** Worker error lines naming a deadlock or serialization failure (`40P01`, `40001`). */
  conflictLogs: number;
  /** Stages whose task rows were claimed in place, not sent as messages (Postgres). */
  offeredStages?: number;
  seed: number;
  durationMs: number;
  /** With `otel`: what the workers' spans showed (its violations are in `violations` too). */
  otel?: TraceReport;
  /** With `flow`: what the flow checks saw (their violations are in `violations`). */
  flow?: FlowReport;
}

/** Creates the store tables and the chaos tables; returns a submitter (never runs work itself). */
export async function prepare(
  service: PathService,
  admin: pg.Pool,
  telemetry?: TelemetryOptions,
): Promise<Switchyard> {
  const { env } = service;
  const submitter = createSwitchyard({
    ...(telemetry ? { telemetry } : {}),
    jobs: chaosJobs({ finalized: async () => {} }),
    store: postgresStore({ connectionString: env.databaseUrl, schema: env.schema, poolSize: 2 }),
    transports: { [env.path]: makeTransport(env) },
    logger: silentLogger,
    reconcile: { intervalMs: 0 },
  });
  await submitter.store.init?.();
  await admin.query(chaosTablesSql(env.schema));
  return submitter;
}

export interface FleetOptions {
  service: PathService;
  workers: number;
  /** Visibility timeout, ms (ignored with `engineDefaults`). */
  visibilityMs?: number;
  packTasks?: number;
  window?: number;
  prefetch?: number;
  lingerMs: number;
  concurrency?: number;
  /** Workers register an OpenTelemetry SDK and print their spans. */
  otel?: boolean;
  /**
   * Workers with the engine's defaults (concurrency, visibility timeout, fan-out chunk, reconciler)
   * instead of the crash campaign's short timeouts and small chunks.
   */
  engineDefaults?: boolean;
  /** Flow limits of the chaos job, and the workers' key-slot lease. */
  flow?: CampaignFlow;
  /** Retention the workers apply (from their reconciler's pass). */
  retention?: RetentionOptions;
  onLine?: (worker: WorkerProcess, line: WorkerLine) => void;
}

/** N worker slots, each restartable after a kill. */
export class Fleet {
  readonly slots: WorkerProcess[] = [];
  /** Every worker started, killed ones included. */
  private readonly started: WorkerProcess[] = [];
  private generation = 0;
  private stopped = false;
  /** When each killed worker was seen dead, by name. */
  readonly deaths = new Map<string, number>();
  readonly restarts: Promise<void>[] = [];
  constructor(private readonly options: FleetOptions) {
    for (let i = 0; i < options.workers; i++) this.slots.push(this.start(i));
  }

  private start(slot: number): WorkerProcess {
    const o = this.options;
    const worker = `w${slot}.${this.generation++}`;
    const config: WorkerConfig = o.engineDefaults
      ? {
          env: o.service.env,
          worker,
          ...(o.packTasks === undefined ? {} : { packTasks: o.packTasks }),
          lingerMs: o.lingerMs,
          rssEveryMs: 1000,
          ...(o.otel ? { otel: true } : {}),
        }
      : {
          env: o.service.env,
          worker,
          concurrency: o.concurrency ?? 32,
          visibilityMs: o.visibilityMs ?? 1500,
          reconcileIntervalMs: 1000,
          reconcileOlderThanMs: RECONCILE_OLDER_THAN_MS[o.service.env.path],
          chunkSize: 100,
          ...(o.packTasks === undefined ? {} : { packTasks: o.packTasks }),
          ...(o.window === undefined ? {} : { window: o.window }),
          ...(o.prefetch === undefined ? {} : { prefetch: o.prefetch }),
          lingerMs: o.lingerMs,
          rssEveryMs: 1000,
          ...(o.otel ? { otel: true } : {}),
          ...(o.flow ? { flow: { slotLeaseMs: 2000, ...o.flow } } : {}),
          ...(o.retention ? { retention: o.retention } : {}),
        };
    const process = spawnWorker(config, (w, line) => o.onLine?.(w, line));
    this.started.push(process);
    return process;
  }

  /** Error lines naming a deadlock or serialization failure, over every worker started. */
  conflictLogs(): number {
    return this.started.reduce((n, w) => n + w.conflictLines, 0);
  }

  /** SIGKILLs the worker in `slot` and restarts it after `restartAfterMs`. */
  async kill(slot: number, restartAfterMs: number): Promise<void> {
    const worker = this.slots[slot];
    if (!worker || worker.killed) return;
    await killWorker(worker);
    this.deaths.set(worker.name, Date.now());
    const restart = sleep(restartAfterMs).then(() => {
      if (!this.stopped) this.slots[slot] = this.start(slot);
    });
    this.restarts.push(restart);
    await restart;
  }

  /** Resolves once every current worker has printed `ready`. */
  async ready(timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.slots.every((w) => w.ready) && Date.now() < until) await sleep(100);
  }

  slotOf(worker: WorkerProcess): number {
    return this.slots.indexOf(worker);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.restarts);
    await Promise.all(this.slots.map((w) => stopWorker(w)));
  }
}

/**
 * SIGKILLs a fleet's workers within a budget: at the moments the workers announce (inside a
 * fan-out, right after an advance or a stage completion) by chance, and on a random timer. Each
 * kill is counted in `counts` by kind; the killed slot restarts 100–600 ms later.
 */
export class Killer {
  /** Kills left in the current run. */
  budget = 0;
  fleet: Fleet | undefined;
  private killing = false;

  constructor(
    private readonly random: () => number,
    private readonly counts: { kills: number; killsBy: Record<KillKind, number> },
  ) {}

  async kill(slot: number, kind: KillKind): Promise<void> {
    if (!this.fleet || this.budget <= 0 || this.killing) return;
    this.killing = true;
    this.budget--;
    this.counts.kills++;
    this.counts.killsBy[kind]++;
    try {
      await this.fleet.kill(slot, 100 + Math.floor(this.random() * 500));
    } finally {
      this.killing = false;
    }
  }

  /** The fleet's `onLine`: a chance of a kill at each announced moment. */
  readonly onLine = (worker: WorkerProcess, line: WorkerLine): void => {
    if (line.ev !== 'fanout' && line.ev !== 'advanced' && line.ev !== 'stage-complete') return;
    // Fan-out chunks are many, advances few: weight the kill chance so all three get hit.
    const chance = line.ev === 'fanout' ? 0.2 : 0.6;
    if (this.random() < chance && !worker.killed && this.fleet)
      void this.kill(this.fleet.slotOf(worker), line.ev);
  };

  /** Kills a random worker every 0.8–2.5 s while `running()` and the budget lasts. */
  async randomKills(running: () => boolean): Promise<void> {
    while (running() && this.budget > 0) {
      await sleep(800 + Math.floor(this.random() * 1700));
      if (running() && this.fleet)
        await this.kill(Math.floor(this.random() * this.fleet.slots.length), 'random');
    }
  }
}

/** Waits until every job is terminal, or the deadline passes. */
export async function waitTerminal(
  yard: Switchyard,
  jobIds: readonly string[],
  deadlineMs: number,
): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    // A probe failing (a busy loopback, a restarting backend) is retried, not fatal.
    const views = await Promise.all(jobIds.map((id) => yard.getJob(id))).catch(() => []);
    if (
      views.length === jobIds.length &&
      views.every((v) => v && ['succeeded', 'failed', 'cancelled'].includes(v.status))
    )
      return true;
    if (Date.now() > until) return false;
    await sleep(250);
  }
}

/** Waits until the path's queues hold nothing (workers still running), or the deadline passes. */
export async function waitDrained(service: PathService, deadlineMs: number) {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const depth = await service.depth().catch(() => undefined);
    if (depth && (depth.pending === 0 || Date.now() > until)) return depth;
    if (!depth && Date.now() > until) return service.depth();
    await sleep(250);
  }
}

/**
 * One campaign on one path: runs of `jobsPerRun` jobs, each with up to `killsPerRun` SIGKILLs, until
 * `kills` have been delivered (or `maxRuns`). Every run is verified; violations are collected.
 */
export async function runCampaign(options: CampaignOptions): Promise<PathReport> {
  const seed = options.seed ?? Math.floor(Math.random() * 1_000_000);
  // Seeded: a campaign's params and kill choices replay from its seed.
  const random = seededRandom(seed);
  const log = options.log ?? (() => {});
  const report: PathReport = {
    path: options.path,
    runs: 0,
    jobs: 0,
    plainJobs: 0,
    tasks: 0,
    kills: 0,
    killsBy: { random: 0, fanout: 0, advanced: 0, 'stage-complete': 0 },
    violations: [],
    lost: 0,
    finalizeCalls: 0,
    unrecorded: 0,
    deadlocks: 0,
    attemptsBeyondRuns: 0,
    retriedTasks: 0,
    conflictLogs: 0,
    seed,
    durationMs: 0,
  };
  const started = Date.now();
  const service = await tryStartPath(options.path);
  if ('skipped' in service) return { ...report, skipped: service.skipped };
  const admin = new pg.Pool({ connectionString: service.env.databaseUrl, max: 2 });
  // An ended pool's sessions close after end() resolves; a late server-side end is no error.
  admin.on('error', () => {});
  let submitter: Switchyard | undefined;
  let fleet: Fleet | undefined;
  let deadlocksBefore: number | undefined;
  const telemetry = options.otel ? submitterTelemetry() : undefined;
  const traces = options.otel ? new TraceCheck() : undefined;
  try {
    submitter = await prepare(
      service,
      admin,
      telemetry && { tracerProvider: telemetry.tracerProvider },
    );
    deadlocksBefore = await service.deadlocks();
    const killsPerRun = options.killsPerRun ?? 6;
    const killer = new Killer(random, report);
    fleet = new Fleet({
      service,
      ...(options.flow ? { flow: options.flow } : {}),
      workers: Math.min(4, Math.max(2, options.workers ?? 3)),
      visibilityMs: options.visibilityMs ?? 1500,
      ...(options.packTasks === undefined ? {} : { packTasks: options.packTasks }),
      ...(options.window === undefined ? {} : { window: options.window }),
      ...(options.prefetch === undefined ? {} : { prefetch: options.prefetch }),
      lingerMs: 30,
      ...(options.otel ? { otel: true } : {}),
      onLine: (worker, line) => {
        traces?.line(line);
        killer.onLine(worker, line);
      },
    });
    killer.fleet = fleet;
    await fleet.ready();
    let run = 0;
    // At least one run, even with no kill asked for (the multi-process flow check).
    while (
      (run === 0 || report.kills < options.kills) &&
      run < (options.maxRuns ?? Number.POSITIVE_INFINITY)
    ) {
      run++;
      const killsBefore = report.kills;
      killer.budget = Math.min(killsPerRun, options.kills - report.kills);
      const jobs: SubmittedJob[] = [];
      for (let j = 0; j < (options.jobsPerRun ?? 2); j++) {
        const params = {
          n: options.n ?? 400,
          seed: Math.floor(random() * 100_000),
          chunk: 10,
          ...(options.maxWorkMs === undefined ? {} : { maxWorkMs: options.maxWorkMs }),
        };
        // Every other job has no finalize: its last stage's completion finishes it in place.
        const plain = j % 2 === 1;
        // Submit is idempotent: retry it through transient failures (on Azurite the loopback can
        // run out of ephemeral ports for a moment: EADDRNOTAVAIL).
        let jobId = '';
        for (let attempt = 1; !jobId; attempt++) {
          try {
            ({ jobId } = await submitter.submit(plain ? CHAOS_PLAIN_JOB : CHAOS_JOB, params, {
              idempotencyKey: `run${run}-job${j}-${seed}`,
              // Every lane gets jobs and kills: a message must keep its lane through redeliveries,
              // retries and re-drives, and no lane may lose one.
              priority: PRIORITIES[(run + j) % PRIORITIES.length]!,
            }));
          } catch (err) {
            if (attempt >= 5) throw err;
            log(`[chaos ${options.path}] submit failed (${(err as Error).message}); retrying`);
            await sleep(1000 * attempt);
          }
        }
        jobs.push({ jobId, params, ...(plain ? { plain } : {}) });
        traces?.submitted(jobId, telemetry!.tracesOf(jobId));
      }
      // Random kills on a timer, on top of the event-driven ones.
      let running = true;
      const randomKills = killer.randomKills(() => running);
      const ids = jobs.map((j) => j.jobId);
      const done = await waitTerminal(submitter, ids, 180_000);
      running = false;
      killer.budget = 0;
      await randomKills;
      const depth = await waitDrained(service, done ? 30_000 : 1000);
      // A kill between a claim and the handler's start leaves an attempt no handler made; in a
      // run without kills every recorded attempt must be a recorded handler run.
      const killed = report.kills > killsBefore;
      const verdict = await verify(admin, service.env.schema, jobs, depth, {
        strictAttempts: !killed,
      });
      if (killed) report.attemptsBeyondRuns += verdict.attemptsBeyondRuns;
      if (options.flow) {
        const flowVerdict = await verifyFlow(admin, service.env.schema, ids, {
          flow: options.flow,
          deaths: fleet.deaths,
        });
        const lastDeath = Math.max(0, ...fleet.deaths.values());
        verdict.violations.push(
          ...flowVerdict.violations,
          ...(await verifyNoSlotHeld(admin, service.env.schema, {
            lastDeath,
            leaseMs: options.flow.slotLeaseMs ?? 2000,
          })),
        );
        report.flow ??= {
          runs: 0,
          cutByKill: 0,
          maxConcurrent: 0,
          admissions: 0,
          minStartGapMs: null,
        };
        const f = report.flow;
        f.runs += flowVerdict.runs;
        f.cutByKill += flowVerdict.cutByKill;
        f.maxConcurrent = Math.max(f.maxConcurrent, flowVerdict.maxConcurrent);
        f.admissions += flowVerdict.admissions;
        if (flowVerdict.minStartGapMs !== null)
          f.minStartGapMs = Math.min(f.minStartGapMs ?? Infinity, flowVerdict.minStartGapMs);
      }
      report.retriedTasks += verdict.retriedTasks;
      report.runs++;
      report.jobs += verdict.jobs;
      report.plainJobs += verdict.plainJobs;
      report.tasks += verdict.tasks;
      report.lost += verdict.lost;
      report.finalizeCalls += verdict.finalizeCalls;
      report.unrecorded += verdict.unrecorded;
      report.violations.push(...verdict.violations.map((v) => `run ${run}: ${v}`));
      log(
        `[chaos ${options.path}] run ${run}: ${verdict.jobs} jobs, ${verdict.tasks} tasks, kills so far ${report.kills}, violations ${verdict.violations.length}${verdict.violations.length ? ` (${verdict.violations.slice(0, 3).join('; ')})` : ''}`,
      );
      if (!done || verdict.violations.length > 0) {
        for (const w of fleet.slots)
          log(`[chaos ${options.path}] ${w.name} stderr: ${w.stderr.slice(-5).join(' | ')}`);
      }
      if (!done) break;
    }
  } finally {
    await fleet?.stop();
    if (traces) {
      await sleep(200); // the last lines of the stopped workers' pipes
      report.otel = traces.report();
      report.violations.push(...report.otel.violations);
    }
    await submitter?.close();
    await admin.end();
    if (fleet) report.conflictLogs = fleet.conflictLogs();
    // Every session has ended: the server's count for the campaign's database is final.
    if (deadlocksBefore !== undefined) {
      report.deadlocks = (await service.deadlocks({ settled: true })) - deadlocksBefore;
      if (report.deadlocks > 0)
        report.violations.push(
          `${report.deadlocks} deadlock(s) counted by the server (pg_stat_database.deadlocks)`,
        );
    }
    if (report.conflictLogs > 0)
      report.violations.push(
        `${report.conflictLogs} worker error line(s) name a deadlock or serialization failure`,
      );
    if (service.offeredStages) report.offeredStages = await service.offeredStages();
    await service.close();
    report.durationMs = Date.now() - started;
  }
  return report;
}
