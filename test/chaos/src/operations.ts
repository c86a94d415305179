/**
 * The operations campaign: while worker processes are SIGKILLed at random, an operator works on
 * the jobs — retries failed ones (`retry`: jobs whose fragile tasks fail until healed), cancels
 * running ones (`cancel`), and deletes finished ones (`purge` from the harness for earlier runs'
 * jobs, `retention` from the workers' reconciler for cancelled jobs). Every run checks: each
 * re-run task completes its stage at most once more, the next stage fans out once, nothing is
 * lost, retried jobs end succeeded with the crash-free result, cancelled jobs end cancelled with no
 * handler starting later than the bound after the cancel returned, purged jobs are fully gone,
 * and the metrics still count every job.
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Switchyard } from '@switchyard/core';
import type { Transport } from '@switchyard/core/driver';
import { seededRandom } from '@switchyard/core/testing';
import pg from 'pg';
import { Fleet, Killer, type KillKind, prepare, waitDrained } from './harness.js';
import { CHAOS_JOB } from './job.js';
import { makeTransport, type PathName, type PathService, tryStartPath } from './paths.js';
import { leftovers, type SubmittedJob, verify, verifyCancelled } from './verify.js';

export interface OperationsOptions {
  path: PathName;
  /** Runs; each submits `jobsPerRun` jobs and SIGKILLs up to `killsPerRun` workers. */
  runs: number;
  /** @defaultValue 3 */
  workers?: number;
  /** Jobs per run, in turn: one retried, one cancelled, one left alone. @defaultValue 3 */
  jobsPerRun?: number;
  /** First-stage tasks per job. @defaultValue 200 */
  n?: number;
  /** @defaultValue 6 */
  killsPerRun?: number;
  /** A retried job's stage-2 tasks with an index multiple of this fail until healed. @defaultValue 50 */
  fragile?: number;
  /**
   * How long after a cancel returned a handler of the job may still start: the workers' cancel
   * check interval (core's `DEFAULT_CANCEL_CHECK_MS`). @defaultValue 1000
   */
  cancelBoundMs?: number;
  /**
   * The workers' retention of cancelled jobs, ms (the harness purges the others): each cancelled
   * job must be deleted by a worker's reconciler, under kills, within this plus a minute (a
   * killed lease holder's lease lasts 30 s). @defaultValue {@link CANCELLED_RETENTION_MS}
   */
  cancelledRetentionMs?: number;
  packTasks?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface OperationsReport {
  path: PathName;
  skipped?: string;
  runs: number;
  jobs: number;
  tasks: number;
  kills: number;
  killsBy: Record<KillKind, number>;
  violations: string[];
  lost: number;
  /** Jobs that failed, were healed and retried; tasks the retries re-opened. */
  retried: { jobs: number; tasks: number };
  cancelled: {
    jobs: number;
    /** Handler starts after a cancel returned, all within the bound (else violations). */
    startsAfterCancel: number;
    latestStartAfterCancelMs: number | null;
  };
  purged: {
    /** Deleted by the harness's `purge` calls. */
    byPurge: { jobs: number; tasks: number };
    /** Cancelled jobs deleted by the workers' retention (the harness purges only succeeded ones). */
    byRetention: number;
    /** Jobs checked fully gone (no job, stage or task row). */
    checkedGone: number;
  };
  /** Messages of deleted jobs dead-lettered as `JobNotFound` (late copies; expected, counted). */
  lateDeadLetters: number;
  /** Fragile tasks' messages dead-lettered when poisoned, before their job's retry (expected). */
  poisonedDeadLetters: number;
  deadlocks: number;
  conflictLogs: number;
  seed: number;
  durationMs: number;
}

/**
 * How long the workers keep a cancelled job, per path. Past it, the job's messages still queued
 * (its tasks' messages are acknowledged unrun, one by one) are dead-lettered as `JobNotFound`:
 * on Azurite, whose calls slow down as a queue deepens, draining a cancelled job's few hundred
 * messages takes longer than 10 s, and dead-lettering them instead costs more still.
 */
export const CANCELLED_RETENTION_MS: Record<PathName, number> = {
  postgres: 10_000,
  servicebus: 10_000,
  storagequeue: 60_000,
};

type Role = 'retry' | 'cancel' | 'plain';
const ROLES: Role[] = ['retry', 'cancel', 'plain'];

interface RunJob extends SubmittedJob {
  role: Role;
  retriedAt?: number;
  cancelledAt?: number;
}

export async function runOperations(options: OperationsOptions): Promise<OperationsReport> {
  const seed = options.seed ?? Math.floor(Math.random() * 1_000_000);
  const random = seededRandom(seed);
  const log = options.log ?? (() => {});
  const report: OperationsReport = {
    path: options.path,
    runs: 0,
    jobs: 0,
    tasks: 0,
    kills: 0,
    killsBy: { random: 0, fanout: 0, advanced: 0, 'stage-complete': 0 },
    violations: [],
    lost: 0,
    retried: { jobs: 0, tasks: 0 },
    cancelled: { jobs: 0, startsAfterCancel: 0, latestStartAfterCancelMs: null },
    purged: { byPurge: { jobs: 0, tasks: 0 }, byRetention: 0, checkedGone: 0 },
    lateDeadLetters: 0,
    poisonedDeadLetters: 0,
    deadlocks: 0,
    conflictLogs: 0,
    seed,
    durationMs: 0,
  };
  const started = Date.now();
  const service = await tryStartPath(options.path);
  if ('skipped' in service) return { ...report, skipped: service.skipped };
  const admin = new pg.Pool({ connectionString: service.env.databaseUrl, max: 2 });
  admin.on('error', () => {});
  const probe = makeTransport(service.env);
  let submitter: Switchyard | undefined;
  let fleet: Fleet | undefined;
  let deadlocksBefore: number | undefined;
  const bound = options.cancelBoundMs ?? 1000;
  const retentionMs = options.cancelledRetentionMs ?? CANCELLED_RETENTION_MS[options.path];
  try {
    submitter = await prepare(service, admin);
    deadlocksBefore = await service.deadlocks();
    const killer = new Killer(random, report);
    fleet = new Fleet({
      service,
      workers: Math.min(4, Math.max(2, options.workers ?? 3)),
      ...(options.packTasks === undefined ? {} : { packTasks: options.packTasks }),
      lingerMs: 30,
      retention: { cancelled: retentionMs },
      onLine: killer.onLine,
    });
    killer.fleet = fleet;
    await fleet.ready();
    /** The last run's succeeded jobs (purged by the next run), and every job deleted so far. */
    let verified: string[] = [];
    const deleted = new Set<string>();
    /** Cancelled jobs retention has not deleted yet, with when they were cancelled. */
    const awaiting = new Map<string, number>();
    /** Checks the cancelled jobs retention deleted since the last call: nothing of them is left. */
    const sweep = async (): Promise<string[]> => {
      const found: string[] = [];
      for (const id of awaiting.keys())
        if (!(await submitter!.getJob(id).catch(() => true))) found.push(id);
      for (const id of found) {
        awaiting.delete(id);
        deleted.add(id);
      }
      report.purged.byRetention += found.length;
      report.purged.checkedGone += found.length;
      return leftovers(admin, service.env.schema, found);
    };
    const reopened = new Set<string>();
    let verifiedAt: number | undefined;
    let submitted = 0;
    let succeeded = 0;
    let cancelled = 0;
    for (let run = 1; run <= options.runs; run++) {
      const killsBefore = report.kills;
      killer.budget = options.killsPerRun ?? 6;
      const jobs: RunJob[] = [];
      for (let j = 0; j < (options.jobsPerRun ?? 3); j++) {
        const role = ROLES[j % ROLES.length]!;
        const params = {
          n: options.n ?? 200,
          seed: Math.floor(random() * 100_000),
          chunk: 10,
          ...(role === 'retry' ? { fragile: options.fragile ?? 50 } : {}),
        };
        const { jobId } = await submitter.submit(CHAOS_JOB, params, {
          idempotencyKey: `ops${run}-job${j}-${seed}`,
        });
        jobs.push({ jobId, params, role });
      }
      submitted += jobs.length;
      let running = true;
      const randomKills = killer.randomKills(() => running);
      const yard = submitter;
      const cancels = Promise.all(
        jobs
          .filter((j) => j.role === 'cancel')
          .map(async (job) => {
            // Mid-run: once the job is in a stage chosen at random, a moment later.
            const stage = Math.floor(random() * 3);
            const pause = Math.floor(random() * 500);
            for (let i = 0; i < 3600; i++) {
              const view = await yard.getJob(job.jobId).catch(() => undefined);
              if (view?.status !== 'queued' && (view?.currentStage?.index ?? 0) >= stage) break;
              await sleep(50);
            }
            await sleep(pause);
            if (await yard.cancel(job.jobId)) job.cancelledAt = Date.now();
            else job.role = 'plain';
          }),
      );
      // The earlier runs' succeeded jobs (verified, finished before `verifiedAt`) are purged while
      // this run's jobs run and workers die; cancelled ones are left to the workers' retention.
      const cutoff = verifiedAt;
      const purge = (async () => {
        if (cutoff === undefined) return;
        await sleep(Math.floor(random() * 2000));
        const done = await yard.purge({ status: 'succeeded', finishedBefore: new Date(cutoff) });
        report.purged.byPurge.jobs += done.jobs;
        report.purged.byPurge.tasks += done.tasks;
      })();
      const done = await operate(submitter, admin, service, jobs, report, 180_000);
      running = false;
      killer.budget = 0;
      await Promise.all([randomKills, cancels, purge]);

      const depth = await waitDrained(service, done ? 30_000 : 1000);
      const cancelledJobs = jobs.filter(
        (j): j is RunJob & { cancelledAt: number } => j.cancelledAt !== undefined,
      );
      // What the purge deleted (the last run's succeeded jobs) and retention (cancelled jobs).
      for (const id of verified) deleted.add(id);
      const byCancel = await verifyCancelled(admin, service.env.schema, cancelledJobs, bound);
      for (const j of cancelledJobs) awaiting.set(j.jobId, j.cancelledAt);
      const retained = await sweep();
      for (const j of jobs)
        for (const r of j.reopened ?? []) for (const id of r.taskIds) reopened.add(id);
      const letters = await deadLetters(probe, deleted, reopened);
      const kept = jobs.filter((j) => j.role !== 'cancel');
      // At most one letter per poisoned task (none when a kill fell between the poisoning and the
      // dead-lettering: the redelivered message finds its task terminal); listings stop at 32
      // letters (Storage peeks), so the count is checked against that bound, the letters seen one
      // by one.
      const mostLetters = reopened.size + letters.late;
      const verdict = await verify(admin, service.env.schema, kept, depth, {
        strictAttempts: report.kills === killsBefore,
        expectedDeadLetters: Math.min(depth.deadLettered, mostLetters),
      });
      const leftBehind = await leftovers(admin, service.env.schema, verified);
      succeeded += kept.length;
      cancelled += cancelledJobs.length;
      const metrics = await metricsCheck(submitter, service, {
        total: submitted,
        succeeded,
        cancelled,
      });
      const violations = [
        ...verdict.violations,
        ...byCancel.violations,
        ...letters.unexpected,
        ...leftBehind,
        ...retained,
        ...metrics,
      ];
      report.runs++;
      report.jobs += jobs.length;
      report.tasks += verdict.tasks;
      report.lost += verdict.lost;
      report.cancelled.jobs += cancelledJobs.length;
      report.cancelled.startsAfterCancel += byCancel.startsAfterCancel;
      if (byCancel.latestStartAfterCancelMs !== null)
        report.cancelled.latestStartAfterCancelMs = Math.max(
          report.cancelled.latestStartAfterCancelMs ?? 0,
          byCancel.latestStartAfterCancelMs,
        );
      report.purged.checkedGone += verified.length;
      report.lateDeadLetters = letters.late;
      report.poisonedDeadLetters = letters.poisoned;
      report.violations.push(...violations.map((v) => `run ${run}: ${v}`));
      log(
        `[operations ${options.path}] run ${run}: ${jobs.length} jobs (${jobs.map((j) => j.role).join(', ')}), kills so far ${report.kills}, purged so far ${report.purged.byPurge.jobs} + ${report.purged.byRetention} by retention, violations ${violations.length}${violations.length ? ` (${violations.slice(0, 3).join('; ')})` : ''}`,
      );
      if (!done)
        for (const j of jobs) {
          const v = await submitter.getJob(j.jobId).catch(() => undefined);
          log(
            `[operations ${options.path}] ${j.jobId} (${j.role}): ${v?.status ?? 'gone'}, stage ${v?.currentStage?.index}, ${JSON.stringify(v?.stages.map((s) => [s.total, s.pending, s.running, s.succeeded, s.failed]))}`,
          );
        }
      if (!done || violations.length > 0)
        for (const w of fleet.slots)
          log(`[operations ${options.path}] ${w.name} stderr: ${w.stderr.slice(-5).join(' | ')}`);
      if (!done) break;
      // This run's succeeded jobs are purged by the next run.
      verified = kept.map((j) => j.jobId);
      verifiedAt = Date.now();
    }
    // Every cancelled job must be deleted by retention: within its age plus a minute (a pass
    // each second; a killed lease holder blocks the next pass for its 30 s lease).
    const latest = Math.max(0, ...awaiting.values());
    while (awaiting.size > 0 && Date.now() < latest + retentionMs + 60_000) {
      report.violations.push(...(await sweep()).map((v) => `retention: ${v}`));
      if (awaiting.size > 0) await sleep(500);
    }
    for (const [id, at] of awaiting)
      report.violations.push(
        `retention: ${id} still there ${Math.round((Date.now() - at) / 1000)} s after its cancel (retention ${retentionMs} ms)`,
      );
    // The metrics still count every job, now that retention deleted the cancelled ones.
    report.violations.push(
      ...(await metricsCheck(submitter, service, {
        total: report.jobs,
        succeeded: report.jobs - report.cancelled.jobs,
        cancelled: report.cancelled.jobs,
      })),
    );
  } finally {
    await fleet?.stop();
    await submitter?.close();
    await probe.close();
    await admin.end();
    if (fleet) report.conflictLogs = fleet.conflictLogs();
    if (deadlocksBefore !== undefined) {
      report.deadlocks = (await service.deadlocks({ settled: true })) - deadlocksBefore;
      if (report.deadlocks > 0)
        report.violations.push(`${report.deadlocks} deadlock(s) counted by the server`);
    }
    if (report.conflictLogs > 0)
      report.violations.push(
        `${report.conflictLogs} worker error line(s) name a deadlock or serialization failure`,
      );
    await service.close();
    report.durationMs = Date.now() - started;
  }
  return report;
}

/**
 * Waits for the run's jobs to finish, retrying each `retry` job once it failed: its fragile tasks
 * are healed first, and the tasks the retry re-opens are recorded for the verifier. Returns false
 * at the deadline.
 */
async function operate(
  yard: Switchyard,
  admin: pg.Pool,
  service: PathService,
  jobs: RunJob[],
  report: OperationsReport,
  deadlineMs: number,
): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    let finished = 0;
    for (const job of jobs) {
      const view = await yard.getJob(job.jobId).catch(() => undefined);
      if (!view) {
        // Deleted: only a cancelled job may be (retention); it counts as finished.
        if (job.cancelledAt !== undefined) finished++;
        continue;
      }
      if (job.role === 'retry' && job.retriedAt === undefined && view.status === 'failed') {
        const failed = await failedTasks(yard, job.jobId);
        await admin.query(
          `INSERT INTO "${service.env.schema}".chaos_healed (job_id) VALUES ($1) ON CONFLICT DO NOTHING`,
          [job.jobId],
        );
        const result = await yard.retry(job.jobId);
        job.retriedAt = Date.now();
        job.reopened = [...(job.reopened ?? []), ...failed];
        report.retried.jobs++;
        report.retried.tasks += result.retried;
        if (result.retried === 0 || result.status !== 'running')
          report.violations.push(
            `${job.jobId}: retry re-opened ${result.retried} task(s), job ${result.status}`,
          );
        continue;
      }
      const terminal = ['succeeded', 'failed', 'cancelled'].includes(view.status);
      const waitingForRetry = job.role === 'retry' && job.retriedAt === undefined;
      if (terminal && !waitingForRetry) finished++;
    }
    // A cancel job counts once its cancel was decided (cancelled, or it finished first).
    const cancelPending = jobs.some((j) => j.role === 'cancel' && j.cancelledAt === undefined);
    if (finished === jobs.length && !cancelPending) return true;
    if (Date.now() > until) return false;
    await sleep(250);
  }
}

/** The failed tasks of a failed job, grouped by stage (what `retry` re-opens). */
async function failedTasks(yard: Switchyard, jobId: string) {
  const byStage = new Map<number, string[]>();
  let cursor: string | undefined;
  do {
    const page = await yard.listTasks(jobId, {
      status: 'failed',
      limit: 500,
      ...(cursor ? { cursor } : {}),
    });
    for (const t of page.tasks) byStage.set(t.stage, [...(byStage.get(t.stage) ?? []), t.id]);
    cursor = page.nextCursor;
  } while (cursor);
  // `retry` re-opens the latest stage with failed tasks.
  const stage = Math.max(...byStage.keys());
  return [{ stage, taskIds: byStage.get(stage) ?? [] }];
}

/**
 * The path's dead letters. Expected, and counted: the message of a fragile task that was poisoned
 * (`MaxAttemptsExceeded`) before its job was retried (`retry` re-sends; the letter stays), and a
 * message of a deleted job dead-lettered as `JobNotFound` (a late copy: the engine cannot tell a
 * deleted job from one that never was). Any other is a violation.
 */
let listings = 0;
async function deadLetters(
  transport: Transport,
  deleted: ReadonlySet<string>,
  reopened: ReadonlySet<string>,
) {
  const out = { poisoned: 0, late: 0, unexpected: [] as string[] };
  const listing = ++listings;
  for (const queue of ['stage', 'task'] as const) {
    for (const letter of (await transport.listDeadLetters?.(queue, { limit: 100 })) ?? []) {
      const taskId = /"taskId":"([^"]+)"/.exec(letter.body)?.[1];
      const ofDeleted = [...deleted].some((id) => letter.body.includes(id));
      if (process.env.CHAOS_DEBUG)
        console.error(
          `[dead letter ${listing}] ${queue} ${letter.id} ${letter.reason} ${taskId} ${letter.description ?? ''} ${letter.body.slice(0, 300)}`,
        );
      if (letter.reason === 'MaxAttemptsExceeded' && taskId && reopened.has(taskId)) out.poisoned++;
      else if (ofDeleted && letter.reason === 'JobNotFound') out.late++;
      else
        out.unexpected.push(
          `dead letter on ${queue} (${letter.reason}): ${letter.body.slice(0, 120)}`,
        );
    }
  }
  return out;
}

/** The path's metrics count every job of the campaign, purged or not, by its final status. */
async function metricsCheck(
  yard: Switchyard,
  service: PathService,
  want: { total: number; succeeded: number; cancelled: number },
): Promise<string[]> {
  const m = (await yard.metrics()).transports.find((t) => t.transport === service.env.path);
  const got = {
    total: m?.jobs.total ?? 0,
    succeeded: m?.jobs.succeeded ?? 0,
    cancelled: m?.jobs.cancelled ?? 0,
    failed: m?.jobs.failed ?? 0,
  };
  const expected = { ...want, failed: 0 };
  return JSON.stringify(got) === JSON.stringify(expected)
    ? []
    : [`metrics count ${JSON.stringify(got)} after purges, want ${JSON.stringify(expected)}`];
}
