/**
 * A chaos worker process: `yard.work()` on one path with the real PostgreSQL store (wrapped by the
 * recorder). Configured by the JSON in env `CHAOS_WORKER` (see {@link WorkerConfig}). Talks to the
 * harness in JSON lines on stdout: `ready`, the recorder's kill-worthy events, `rss` samples (and
 * with `otel`, every span).
 * SIGTERM drains and exits; the harness SIGKILLs it at random moments.
 * @module
 */
import { createSwitchyard, type Logger, type RetentionOptions } from '@switchyard/core';
import { postgresStore } from '@switchyard/driver-postgres';
import pg from 'pg';
import { type ChaosFlow, chaosJobs } from './job.js';
import { registerWorkerTelemetry } from './otel.js';
import { makeTransport, type PathEnv } from './paths.js';
import { finalizeEffect, recordingStore } from './recording.js';

export interface WorkerConfig {
  env: PathEnv;
  /** Name in the chaos tables and the harness's messages. */
  worker: string;
  /** Handlers at once (`work({ concurrency })`); absent: the engine's default. */
  concurrency?: number;
  /** Visibility timeout / lock duration, ms; absent: the engine's default. */
  visibilityMs?: number;
  /** Tasks held beyond the slots (`work({ prefetch })`); absent: the engine's default. */
  prefetch?: number;
  /** Reconciler interval and age threshold, ms; absent: the engine's defaults. */
  reconcileIntervalMs?: number;
  reconcileOlderThanMs?: number;
  /** Tasks per fan-out chunk (small: a fan-out takes several chunks, so a kill can land inside). */
  chunkSize?: number;
  packTasks?: number;
  /** The fairness window (`batching.window`); absent: the engine's default. */
  window?: number;
  /** Pause after each kill-worthy event so the harness's SIGKILL lands right there. */
  lingerMs: number;
  /** How often to print `{ ev: 'rss' }`. */
  rssEveryMs: number;
  /** Register an OpenTelemetry SDK and print every span (`--otel`; see `otel.ts`). */
  otel?: boolean;
  /** Flow limits of the chaos job's first two stages, and the key slots' lease. */
  flow?: ChaosFlow & { slotLeaseMs?: number };
  /** Retention of finished jobs (applied by the reconciler's pass); absent: none. */
  retention?: RetentionOptions;
}

const config = JSON.parse(process.env.CHAOS_WORKER ?? process.argv[2] ?? '') as WorkerConfig;
const out = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
const log =
  (level: string) =>
  (message: string, fields?: Record<string, unknown>): void => {
    process.stderr.write(`${JSON.stringify({ level, message, ...fields })}\n`);
  };
const logger: Logger = { debug: () => {}, info: () => {}, warn: log('warn'), error: log('error') };

// Before the Switchyard: its metric instruments bind to the meter provider registered now.
if (config.otel) registerWorkerTelemetry(out);
const { env } = config;
const pool = new pg.Pool({ connectionString: env.databaseUrl, max: 3 });
const store = recordingStore(
  postgresStore({ connectionString: env.databaseUrl, schema: env.schema, poolSize: 6 }),
  {
    pool,
    schema: env.schema,
    worker: config.worker,
    onEvent: async (event) => {
      out(event);
      if (config.lingerMs > 0) await new Promise((r) => setTimeout(r, config.lingerMs));
    },
  },
);
const yard = createSwitchyard({
  jobs: chaosJobs(finalizeEffect(pool, env.schema, config.worker), config.flow),
  store,
  transports: { [env.path]: makeTransport(env) },
  batching: {
    ...(config.chunkSize === undefined ? {} : { chunkSize: config.chunkSize }),
    ...(config.packTasks === undefined ? {} : { packTasks: config.packTasks }),
    ...(config.window === undefined ? {} : { window: config.window }),
  },
  logger,
  ...(config.retention ? { retention: config.retention } : {}),
  ...(config.flow?.slotLeaseMs === undefined
    ? {}
    : { flowControl: { slotLeaseMs: config.flow.slotLeaseMs } }),
  reconcile: {
    ...(config.reconcileIntervalMs === undefined ? {} : { intervalMs: config.reconcileIntervalMs }),
    ...(config.reconcileOlderThanMs === undefined
      ? {}
      : { olderThanMs: config.reconcileOlderThanMs }),
  },
});

const controller = new AbortController();
process.once('SIGTERM', () => controller.abort());
process.once('SIGINT', () => controller.abort());
const rss = () => out({ ev: 'rss', rss: process.memoryUsage().rss, at: Date.now() });
const sampler = setInterval(rss, config.rssEveryMs);
const working = yard.work({
  ...(config.concurrency === undefined ? {} : { concurrency: config.concurrency }),
  ...(config.visibilityMs === undefined ? {} : { visibilityTimeoutMs: config.visibilityMs }),
  ...(config.prefetch === undefined ? {} : { prefetch: config.prefetch }),
  signal: controller.signal,
  waitMs: 250,
});
out({ ev: 'ready', pid: process.pid });
rss();
try {
  await working;
} finally {
  clearInterval(sampler);
  rss();
  await yard.close();
  await pool.end();
  out({ ev: 'exit' });
}
