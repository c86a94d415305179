/**
 * Load / soak on the Postgres path: several 10,000+-task jobs at once while workers are killed and
 * restarted. One worker (slot 0) is never killed: its RSS over the run shows whether memory stays
 * flat. Connections are counted by `application_name` (unique per soak) before, during and after.
 * @module
 */

import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Fleet, prepare, waitDrained, waitTerminal } from './harness.js';
import { CHAOS_JOB } from './job.js';
import { DATABASE_URL, startPath, uniqueSuffix } from './paths.js';
import { type SubmittedJob, verify } from './verify.js';

export interface SoakOptions {
  jobs?: number;
  n?: number;
  workers?: number;
  /** Mean time between kills, ms. @defaultValue 3000 */
  killEveryMs?: number;
  log?: (line: string) => void;
}

export interface SoakReport {
  jobs: number;
  tasksPerJob: number;
  kills: number;
  durationMs: number;
  /** The never-killed worker's RSS, bytes: first sample after 3 s of work, last sample, max. */
  rss: { start: number; end: number; max: number; samples: number };
  connections: { before: number; duringMax: number; after: number };
  violations: string[];
  lost: number;
  leaks: string[];
}

export async function runSoak(options: SoakOptions = {}): Promise<SoakReport> {
  const log = options.log ?? (() => {});
  const n = options.n ?? 10_000;
  const appName = `chaos_soak_${uniqueSuffix()}`;
  const url = new URL(DATABASE_URL);
  url.searchParams.set('application_name', appName);
  const started = Date.now();
  const service = await startPath('postgres', url.toString());
  // The path's own database, under the soak's application_name.
  const admin = new pg.Pool({ connectionString: service.env.databaseUrl, max: 1 });
  const connections = async () =>
    Number(
      (
        await admin.query<{ n: string }>(
          'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1',
          [appName],
        )
      ).rows[0]?.n ?? 0,
    );
  const report: SoakReport = {
    jobs: options.jobs ?? 3,
    tasksPerJob: n * 2 + Math.ceil(n / 10),
    kills: 0,
    durationMs: 0,
    rss: { start: 0, end: 0, max: 0, samples: 0 },
    connections: { before: 0, duringMax: 0, after: 0 },
    violations: [],
    lost: 0,
    leaks: [],
  };
  let fleet: Fleet | undefined;
  try {
    // The harness's own queue probe holds a connection under the same name: open it first.
    await service.depth();
    report.connections.before = await connections();
    const submitter = await prepare(service, admin);
    fleet = new Fleet({
      service,
      workers: options.workers ?? 3,
      visibilityMs: 2000,
      lingerMs: 0,
      concurrency: 64,
    });
    const jobs: SubmittedJob[] = await Promise.all(
      Array.from({ length: report.jobs }, async (_, j) => {
        const params = { n, seed: 1000 + j, chunk: 10 };
        const { jobId } = await submitter.submit(CHAOS_JOB, params, {
          idempotencyKey: `${appName}-${j}`,
        });
        return { jobId, params };
      }),
    );
    log(`[soak] submitted ${jobs.length} jobs of ${report.tasksPerJob} tasks`);
    let running = true;
    const killer = (async () => {
      while (running) {
        await sleep((options.killEveryMs ?? 3000) * (0.5 + Math.random()));
        if (!running) break;
        // Never slot 0: it is the worker whose memory we watch.
        const slot = 1 + Math.floor(Math.random() * (fleet!.slots.length - 1));
        report.kills++;
        await fleet!.kill(slot, 200);
      }
    })();
    const watcher = (async () => {
      while (running) {
        report.connections.duringMax = Math.max(report.connections.duringMax, await connections());
        await sleep(1000);
      }
    })();
    const done = await waitTerminal(
      submitter,
      jobs.map((j) => j.jobId),
      600_000,
    );
    running = false;
    await Promise.all([killer, watcher]);
    const depth = done ? await waitDrained(service, 60_000) : await service.depth();
    const survivor = fleet.slots[0]!;
    // Samples are 1 s apart: skip the first 3 s (start-up, before the load is on).
    const samples = survivor.rss.slice(3);
    report.rss = {
      start: samples[0] ?? 0,
      end: samples.at(-1) ?? 0,
      max: Math.max(0, ...samples),
      samples: samples.length,
    };
    const verdict = await verify(admin, service.env.schema, jobs, depth);
    report.violations = verdict.violations;
    report.lost = verdict.lost;
    await fleet.stop();
    fleet = undefined;
    await submitter.close();
    // Closed pools end their connections asynchronously on the server side.
    for (let i = 0; i < 20; i++) {
      report.connections.after = await connections();
      if (report.connections.after <= report.connections.before) break;
      await sleep(250);
    }
    if (report.connections.after > report.connections.before)
      report.leaks.push(
        `connections: ${report.connections.before} before, ${report.connections.after} after`,
      );
    if (report.rss.end > report.rss.start * 1.5 + 64 * 1024 * 1024)
      report.leaks.push(`survivor RSS grew from ${report.rss.start} to ${report.rss.end} bytes`);
  } finally {
    await fleet?.stop();
    await admin.end();
    await service.close();
    report.durationMs = Date.now() - started;
  }
  return report;
}
