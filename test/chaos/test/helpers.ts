/**
 * In-process yards on a real path (real PostgreSQL store, real transport), for the duplicate,
 * poison and bad-input tests. One service per test file; fresh schema and queues; all torn down.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import {
  createSwitchyard,
  type RetryPolicy,
  type Switchyard,
  silentLogger,
} from '@switchyard/core';
import type { Store, Transport } from '@switchyard/core/driver';
import { postgresStore } from '@switchyard/driver-postgres';
import pg from 'pg';
import { makeTransport, type PathName, type PathService, tryStartPath } from '../src/paths.js';
import { chaosTablesSql } from '../src/recording.js';

type AnyJobs = Parameters<typeof createSwitchyard>[0]['jobs'];

export interface StartOptions {
  workers?: number;
  wrapTransport?: (t: Transport) => Transport;
  wrapStore?: (s: Store) => Store;
  retry?: RetryPolicy;
  concurrency?: number;
}

export interface OpenPath {
  service: PathService;
  admin: pg.Pool;
  /** Starts `workers` yards working on the path; the first one is returned for submits and reads. */
  start(
    jobs: AnyJobs,
    options?: StartOptions,
  ): Promise<{ yard: Switchyard; transports: Transport[] }>;
  /** Stops every yard started so far. */
  stopAll(): Promise<void>;
  close(): Promise<void>;
}

export async function openPath(path: PathName): Promise<OpenPath | undefined> {
  const service = await tryStartPath(path);
  if ('skipped' in service) {
    console.warn(`[chaos] ${path} skipped: ${service.skipped} (REQUIRE_SERVICES=1 fails instead)`);
    return undefined;
  }
  const { env } = service;
  const admin = new pg.Pool({ connectionString: env.databaseUrl, max: 3 });
  await admin.query(chaosTablesSql(env.schema));
  let running: { controller: AbortController; loop: Promise<void>; yard: Switchyard }[] = [];
  const stopAll = async () => {
    const list = running;
    running = [];
    for (const r of list) r.controller.abort();
    const t0 = Date.now();
    // A drain that never ends is reported, not waited on forever (seen once under heavy CPU load).
    const drained = await Promise.race([
      Promise.all(list.map((r) => r.loop)).then(() => true),
      sleep(30_000).then(() => false),
    ]);
    if (!drained) console.warn('[chaos] work() loops did not drain within 30 s of abort');
    if (process.env.CHAOS_DEBUG) console.info(`[chaos] loops drained in ${Date.now() - t0} ms`);
    await Promise.all(list.map((r) => r.yard.close()));
    if (process.env.CHAOS_DEBUG) console.info(`[chaos] yards closed in ${Date.now() - t0} ms`);
  };
  return {
    service,
    admin,
    async start(jobs, options = {}) {
      const started: Switchyard[] = [];
      const transports: Transport[] = [];
      for (let i = 0; i < (options.workers ?? 1); i++) {
        const store = postgresStore({
          connectionString: env.databaseUrl,
          schema: env.schema,
          poolSize: 4,
        });
        const transport = (options.wrapTransport ?? ((t) => t))(makeTransport(env));
        transports.push(transport);
        const yard = createSwitchyard({
          jobs,
          store: (options.wrapStore ?? ((s) => s))(store),
          transports: { [env.path]: transport },
          logger: silentLogger,
          reconcile: { intervalMs: 1000, olderThanMs: 3000 },
          ...(options.retry ? { retry: options.retry } : {}),
        });
        const controller = new AbortController();
        const loop = yard.work({
          concurrency: options.concurrency ?? 16,
          signal: controller.signal,
          visibilityTimeoutMs: 1500,
          waitMs: 200,
        });
        running.push({ controller, loop, yard });
        started.push(yard);
      }
      return { yard: started[0]!, transports };
    },
    stopAll,
    async close() {
      await stopAll();
      await admin.end();
      await service.close();
    },
  };
}

export { sleep };

/** Polls `probe` until it returns a value that is not undefined, or throws after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}
