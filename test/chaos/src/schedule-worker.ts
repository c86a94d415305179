/**
 * A scheduler worker process for the fleet test of schedules: a Switchyard on the real PostgreSQL
 * store and queue with cron schedules firing every second and every 3 s (`catchUp: 'all'`),
 * running scheduler passes back to back, and `work()` running the fires' jobs. It prints each fire
 * its passes submitted as a JSON line (`{ ev: 'fired', schedule, fireAt, created }`, at the end of
 * the pass) and, as it happens, each creation of a fire's job (`{ ev: 'submit', key, created }`:
 * `created` false is a re-submission).
 *
 * Kill points inside a pass: the harness writes `{ "arm": point, "schedule"?: name }` (or
 * `{ "arm": null }`) lines to stdin, and `{ "passes": false }` to stop evaluating before it waits
 * for the jobs to finish. An armed worker that reaches the point (for that schedule, or any)
 * prints `{ ev: 'point', point, schedule, fireAt }` and stops there (the pass never goes on), so
 * the harness's SIGKILL lands exactly at it:
 * - `created`: the fire's job row is committed, its first stage message not sent yet;
 * - `submitted`: the fire's job is submitted, the schedule's cursor not moved past it yet;
 * - `catch-up`: a fire's cursor move is recorded while later fires of the same pass are still due.
 * Configured by the JSON in env `SCHEDULE_WORKER`.
 * @module
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSwitchyard, defineJob, defineTask, type Logger, stage } from '@switchyard/core';
import type { Store } from '@switchyard/core/driver';
import { postgresStore, postgresTransport } from '@switchyard/driver-postgres';

export interface ScheduleWorkerConfig {
  databaseUrl: string;
  schema: string;
  /** The scheduler lease: how long a killed evaluator blocks the others. */
  leaseMs: number;
  /** Pause between passes. */
  passEveryMs: number;
}

export type KillPoint = 'created' | 'submitted' | 'catch-up';

/** The schedules every worker evaluates, with their period (cron steps, UTC-aligned seconds). */
export const SCHEDULES = [
  { name: 'every-second', cron: '* * * * * *', periodMs: 1000 },
  { name: 'every-3s', cron: '*/3 * * * * *', periodMs: 3000 },
] as const;

export type ScheduleWorkerLine =
  | { ev: 'ready'; pid: number }
  | { ev: 'fired'; schedule: string; fireAt: string; created: boolean }
  | { ev: 'submit'; key: string; created: boolean }
  | { ev: 'point'; point: KillPoint; schedule: string; fireAt: string };

const isMain = process.env.SCHEDULE_WORKER !== undefined;
if (isMain) await main(JSON.parse(process.env.SCHEDULE_WORKER!) as ScheduleWorkerConfig);

async function main(config: ScheduleWorkerConfig): Promise<void> {
  const out = (line: ScheduleWorkerLine) => process.stdout.write(`${JSON.stringify(line)}\n`);
  const log =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      process.stderr.write(`${JSON.stringify({ level, message, ...fields })}\n`);
    };
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: log('warn'),
    error: log('error'),
  };

  let armedPoint: KillPoint | null = null;
  /** The schedule the armed point is for (any when undefined). */
  let armedFor: string | undefined;
  let passes = true;
  createInterface({ input: process.stdin }).on('line', (text) => {
    const command = JSON.parse(text) as {
      arm?: KillPoint | null;
      schedule?: string;
      passes?: false;
    };
    if (command.arm !== undefined) {
      armedPoint = command.arm;
      armedFor = command.schedule;
    }
    if (command.passes === false) passes = false;
  });
  const armed = (point: KillPoint, schedule: string) =>
    armedPoint === point && (armedFor === undefined || armedFor === schedule);
  /** Reports the point and never returns: the pass stops here until the SIGKILL. */
  const stopAt = async (point: KillPoint, schedule: string, fireAt: Date): Promise<never> => {
    armedPoint = null;
    out({ ev: 'point', point, schedule, fireAt: fireAt.toISOString() });
    await new Promise(() => {});
    throw new Error('unreachable');
  };
  /** When this worker's current pass started (no later than the pass's own "now"). */
  let passStartedAt = 0;

  const { databaseUrl: connectionString, schema } = config;
  const inner = postgresStore({ connectionString, schema, poolSize: 3 });
  const store: Store = Object.create(inner) as Store;
  store.createJob = async (job) => {
    const result = await inner.createJob(job);
    const key = job.idempotencyKey ?? '';
    const [, schedule, fireAt = ''] = /^schedule:([^:]+):(.+)$/.exec(key) ?? [];
    if (schedule === undefined) return result;
    out({ ev: 'submit', key, created: result.created });
    if (result.created && armed('created', schedule))
      await stopAt('created', schedule, new Date(fireAt));
    return result;
  };
  store.advanceSchedule = async (advance) => {
    const { lastFireAt, name } = advance;
    if (lastFireAt && armed('submitted', name)) await stopAt('submitted', name, lastFireAt);
    const applied = await inner.advanceSchedule(advance);
    const periodMs = SCHEDULES.find((s) => s.name === name)?.periodMs ?? Number.POSITIVE_INFINITY;
    // The next fire is due at or before this pass's "now": the pass goes on to submit it.
    if (lastFireAt && armed('catch-up', name) && lastFireAt.getTime() + periodMs <= passStartedAt)
      await stopAt('catch-up', name, lastFireAt);
    return applied;
  };

  const tick = defineJob({
    name: 'tick',
    stages: [
      stage({
        name: 'noop',
        task: defineTask({ name: 'noop', handler: (n: number) => n }),
        fanOut: () => [1],
      }),
    ],
  });
  const yard = createSwitchyard({
    jobs: [tick],
    store,
    transports: [postgresTransport({ connectionString, schema, poolSize: 2, pollIntervalMs: 100 })],
    logger,
    reconcile: { intervalMs: 0 },
    schedules: SCHEDULES.map((s) => ({
      name: s.name,
      job: 'tick' as const,
      cron: s.cron,
      catchUp: 'all' as const,
    })),
    // Passes are run below, one after the other; work() only runs the fires' jobs.
    scheduler: { intervalMs: 0, leaseMs: config.leaseMs },
  });

  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort());
  await yard.ready();
  // A killed worker's task comes back to the others after this.
  const working = yard.work({ signal: stop.signal, concurrency: 4, visibilityTimeoutMs: 2000 });
  out({ ev: 'ready', pid: process.pid });
  while (!stop.signal.aborted) {
    if (!passes) {
      await sleep(config.passEveryMs);
      continue;
    }
    try {
      passStartedAt = Date.now();
      const pass = await yard.runSchedules();
      for (const f of pass.fired)
        out({
          ev: 'fired',
          schedule: f.schedule,
          fireAt: f.fireAt.toISOString(),
          created: f.created,
        });
    } catch (err) {
      logger.error('pass failed', { error: (err as Error).message });
    }
    await sleep(config.passEveryMs);
  }
  await working;
  await yard.close();
}
