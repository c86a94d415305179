/**
 * A scheduler worker process for the fleet test of schedules: a Switchyard on the real PostgreSQL
 * store and queue with cron schedules firing every second, running scheduler passes back to back
 * and printing each fire it submitted as a JSON line (`{ ev: 'fired', schedule, fireAt, created }`).
 * Configured by the JSON in env `SCHEDULE_WORKER`; the harness SIGKILLs it at any moment.
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createSwitchyard, defineJob, defineTask, type Logger, stage } from '@switchyard/core';
import { postgresStore, postgresTransport } from '@switchyard/driver-postgres';

export interface ScheduleWorkerConfig {
  databaseUrl: string;
  schema: string;
  /** The scheduler lease: how long a killed evaluator blocks the others. */
  leaseMs: number;
  /** Pause between passes. */
  passEveryMs: number;
}

const config = JSON.parse(process.env.SCHEDULE_WORKER ?? '') as ScheduleWorkerConfig;
const out = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);
const log =
  (level: string) =>
  (message: string, fields?: Record<string, unknown>): void => {
    process.stderr.write(`${JSON.stringify({ level, message, ...fields })}\n`);
  };
const logger: Logger = { debug: () => {}, info: () => {}, warn: log('warn'), error: log('error') };

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

const { databaseUrl: connectionString, schema } = config;
const yard = createSwitchyard({
  jobs: [tick],
  store: postgresStore({ connectionString, schema, poolSize: 3 }),
  transports: [postgresTransport({ connectionString, schema, poolSize: 2, pollIntervalMs: 250 })],
  logger,
  reconcile: { intervalMs: 0 },
  schedules: [
    { name: 'every-second', job: 'tick', cron: '* * * * * *', catchUp: 'all' },
    { name: 'every-3s', job: 'tick', cron: '*/3 * * * * *', catchUp: 'all' },
  ],
  scheduler: { intervalMs: 0, leaseMs: config.leaseMs },
});

let stopping = false;
process.once('SIGTERM', () => {
  stopping = true;
});
await yard.ready();
out({ ev: 'ready', pid: process.pid });
while (!stopping) {
  try {
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
await yard.close();
