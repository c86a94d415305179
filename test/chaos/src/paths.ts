/**
 * The three real paths: how a worker builds its transport from a serialisable description, how the
 * harness starts the path's service (Azurite, the Service Bus emulator) and reads its queues.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { QueueServiceClient } from '@azure/storage-queue';
import type { Transport } from '@switchyard/core/driver';
import { postgresTransport } from '@switchyard/driver-postgres';
import { serviceBusTransport, serviceBusTriggerQueues } from '@switchyard/driver-servicebus';
import {
  POISON_SUFFIX,
  storageQueueTransport,
  storageQueueTriggerQueues,
} from '@switchyard/driver-storagequeue';
import pg from 'pg';
import { createOwnDatabase } from './database.js';

export const PATHS = ['postgres', 'storagequeue', 'servicebus'] as const;
export type PathName = (typeof PATHS)[number];

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Everything a worker process needs to reach one path; passed to it as JSON. */
export interface PathEnv {
  path: PathName;
  databaseUrl: string;
  /** Schema of the store (and of the Postgres queue). */
  schema: string;
  /** Azurite / emulator connection string. */
  connectionString?: string;
  queues?: { stage: string; task: string };
}

/**
 * How long a task may sit untouched before the reconciler re-sends it, per path. Azurite's cost
 * per receive and delete grows with queue depth (about 17 ms per 32 messages at 100 queued,
 * 1.2 s at 10,000): copies re-sent too early deepen the queue, which slows every call, which makes
 * more tasks look lost. Real Storage accounts do not slow down with depth.
 */
export const RECONCILE_OLDER_THAN_MS: Record<PathName, number> = {
  postgres: 3000,
  servicebus: 3000,
  storagequeue: 10_000,
};

/** Redeliveries never poison a chaos message: kills and transient failures cost deliveries. */
export const MAX_DELIVERIES = 100;

export function makeTransport(env: PathEnv): Transport {
  switch (env.path) {
    case 'postgres':
      return postgresTransport({
        connectionString: env.databaseUrl,
        schema: env.schema,
        poolSize: 4,
        pollIntervalMs: 250,
      });
    case 'storagequeue':
      return storageQueueTransport({
        connectionString: env.connectionString!,
        queues: env.queues!,
        maxDequeueCount: MAX_DELIVERIES,
        priorityLanes: true,
      });
    case 'servicebus':
      return serviceBusTransport({
        connectionString: env.connectionString!,
        queues: env.queues!,
        maxDeliveryCount: MAX_DELIVERIES,
        priorityLanes: true,
      });
  }
}

export const uniqueSuffix = () => randomBytes(5).toString('hex');

/** Queue counts of a path: messages still there (visible, invisible, scheduled) and dead-letters. */
export interface QueueDepth {
  pending: number;
  deadLettered: number;
}

/** A path's running service: its env for workers, a queue probe, and teardown. */
export interface PathService {
  env: PathEnv;
  depth(): Promise<QueueDepth>;
  /**
   * Deadlocks the server counted in the path's own database (see database.ts); `settled` waits
   * until every session has reported (read it after the workers stopped).
   */
  deadlocks(options?: { settled?: boolean }): Promise<number>;
  /**
   * Stages whose task rows the transport claimed in place (task-row claims: the store and the
   * Postgres transport share the schema); absent on a path without them.
   */
  offeredStages?(): Promise<number>;
  close(): Promise<void>;
}

/** Why a path cannot run here (its service is missing); with REQUIRE_SERVICES=1 this throws. */
export class ServiceUnavailable extends Error {
  override name = 'ServiceUnavailable';
}

async function dbReachable(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    throw new ServiceUnavailable(
      `PostgreSQL at ${url.replace(/:[^:@/]*@/, ':***@')} is unreachable: ${(err as Error).message}`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Starts what `path` needs on loopback with a database of its own on the server of `serverUrl`
 * (dropped by `close`), a fresh schema in it and fresh queue names. Missing services reject with
 * {@link ServiceUnavailable}.
 */
export async function startPath(path: PathName, serverUrl = DATABASE_URL): Promise<PathService> {
  await dbReachable(serverUrl);
  const suffix = uniqueSuffix();
  const schema = `chaos_${path.slice(0, 2)}_${suffix}`;
  const database = await createOwnDatabase(serverUrl, 'switchyard_chaos');
  const databaseUrl = database.url;
  const admin = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  // An ended pool's sessions close after end() resolves; a late server-side end is no error.
  admin.on('error', () => {});
  const dropDatabase = async () => {
    await admin.end().catch(() => {});
    await database.drop();
  };
  const deadlocks = (options: { settled?: boolean } = {}) =>
    options.settled ? database.settledDeadlocks() : database.deadlocks();
  const count = async (sql: string): Promise<number> => {
    try {
      const { rows } = await admin.query<{ n: string }>(sql);
      return Number(rows[0]?.n ?? 0);
    } catch (err) {
      // The queue tables appear with the first transport use.
      if ((err as { code?: string }).code === '42P01') return 0;
      throw err;
    }
  };
  const queues = { stage: `chaos-${suffix}-s`, task: `chaos-${suffix}-t` };
  switch (path) {
    case 'postgres':
      return {
        env: { path, databaseUrl, schema },
        deadlocks,
        offeredStages: () => count(`SELECT count(*) AS n FROM "${schema}".task_offers`),
        depth: async () => ({
          // Queue messages, and the task rows the transport claims in place: claimed ranges
          // (leases) and offered tasks not claimed yet.
          pending:
            (await count(`SELECT count(*) AS n FROM "${schema}".queue_messages`)) +
            (await count(`SELECT count(*) AS n FROM "${schema}".task_leases`)) +
            (await count(
              `SELECT coalesce(sum(upto - claimed), 0) AS n FROM "${schema}".task_offers`,
            )),
          deadLettered: await count(`SELECT count(*) AS n FROM "${schema}".queue_dead_letters`),
        }),
        close: dropDatabase,
      };
    case 'storagequeue': {
      const { startAzurite } = await import(
        '../../../packages/driver-storagequeue/test/azurite.js'
      );
      let azurite: Awaited<ReturnType<typeof startAzurite>>;
      try {
        azurite = await startAzurite();
      } catch (err) {
        await dropDatabase();
        throw new ServiceUnavailable(`Azurite could not start: ${(err as Error).message}`);
      }
      const service = QueueServiceClient.fromConnectionString(azurite.connectionString);
      const approx = async (name: string) => {
        try {
          const p = await service.getQueueClient(name).getProperties();
          return p.approximateMessagesCount ?? 0;
        } catch (err) {
          if ((err as { statusCode?: number }).statusCode === 404) return 0;
          throw err;
        }
      };
      // Every queue the transport uses: the stage queue and each priority lane of the task queue.
      const all = storageQueueTriggerQueues({ queues, priorityLanes: true }).map(
        (q) => q.queueName,
      );
      const sum = async (names: string[]) =>
        (await Promise.all(names.map(approx))).reduce((a, b) => a + b, 0);
      return {
        env: { path, databaseUrl, schema, connectionString: azurite.connectionString, queues },
        deadlocks,
        depth: async () => ({
          pending: await sum(all),
          deadLettered: await sum(all.map((q) => q + POISON_SUFFIX)),
        }),
        close: async () => {
          await azurite.stop();
          await dropDatabase();
        },
      };
    }
    case 'servicebus': {
      let emulator: Awaited<
        ReturnType<typeof import('@switchyard/servicebus-emulator')['startEmulator']>
      >;
      try {
        const { startEmulator } = await import('@switchyard/servicebus-emulator');
        // In this process: its queues are in memory and queueStats reads them directly.
        emulator = await startEmulator({ port: 0, lockDurationMs: 1000 });
      } catch (err) {
        await dropDatabase();
        throw new ServiceUnavailable(
          `Service Bus emulator could not start: ${(err as Error).message}`,
        );
      }
      // Every queue the transport uses: the stage queue and each priority lane of the task queue.
      const all = serviceBusTriggerQueues({ queues, priorityLanes: true }).map((q) => q.queueName);
      for (const name of all)
        emulator.configureQueue(name, { lockDurationMs: 1000, maxDeliveryCount: MAX_DELIVERIES });
      const stats = () => all.map((q) => emulator.queueStats(q));
      return {
        env: { path, databaseUrl, schema, connectionString: emulator.connectionString, queues },
        deadlocks,
        depth: async () => ({
          pending: stats().reduce((a, s) => a + s.active + s.scheduled + s.locked, 0),
          deadLettered: stats().reduce((a, s) => a + s.deadLettered, 0),
        }),
        close: async () => {
          await emulator.close();
          await dropDatabase();
        },
      };
    }
  }
}

/** Starts a path, or returns the reason it is skipped; with REQUIRE_SERVICES=1 a missing service throws. */
export async function tryStartPath(
  path: PathName,
  databaseUrl = DATABASE_URL,
): Promise<PathService | { skipped: string }> {
  try {
    return await startPath(path, databaseUrl);
  } catch (err) {
    if (!(err instanceof ServiceUnavailable) || process.env.REQUIRE_SERVICES === '1') throw err;
    return { skipped: err.message };
  }
}
