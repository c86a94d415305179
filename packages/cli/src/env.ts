import { resolve } from 'node:path';
import { type AzureEnvConfig, configError, configFromEnv } from '@switchyard/azure';
import {
  createSwitchyard,
  FINISHED_JOB_STATUSES,
  type FieldIssue,
  isSwitchyardError,
  type Logger,
  memoryTransport,
  parseDuration,
  type ReconcileOptions,
  type RetentionOptions,
  type ScheduleDefinition,
  type SchedulerOptions,
  type SecretInput,
  type Switchyard,
} from '@switchyard/core';
import { type Store, type Transport, toCachedSecret } from '@switchyard/core/driver';
import type { TransportFlag } from '@switchyard/core/http';
import {
  type PGliteLike,
  type PostgresStoreOptions,
  postgresStore,
  postgresTransport,
} from '@switchyard/driver-postgres';
import { lockDataDir } from './data-dir-lock.js';
import type { NamedJob } from './jobs.js';

/** Options of {@link createYardFromEnv}. */
export interface YardFromEnvOptions {
  /** The job definitions this process can submit and run. */
  jobs: readonly NamedJob[];
  /** @defaultValue `process.env` */
  env?: Record<string, string | undefined>;
  /**
   * PGlite data folder used when no `DATABASE_URL` / `DATABASE_SECRET` is set (the embedded
   * default, no server needed). `SWITCHYARD_DATA_DIR` overrides it. @defaultValue `.switchyard/data`
   */
  dataDir?: string;
  /**
   * Also configure the `postgres` queue transport on the same database. @defaultValue true (it is
   * the only path when no Azure queue is enabled)
   */
  postgresTransport?: boolean;
  /** Also configure an in-process `memory` path (tests, `SWITCHYARD_DEFAULT_TRANSPORT=memory`). */
  memoryTransport?: boolean;
  logger?: Logger;
  /** Visibility timeout of the postgres transport, ms. @defaultValue 30000 */
  visibilityTimeoutMs?: number;
  /** Reconciler settings passed to `createSwitchyard`. */
  reconcile?: ReconcileOptions;
  /** Cron schedules passed to `createSwitchyard`. */
  schedules?: readonly ScheduleDefinition[];
  /** Scheduler settings passed to `createSwitchyard` (how often `work()` runs a pass …). */
  scheduler?: SchedulerOptions;
  /**
   * How long finished jobs are kept (the reconciler's pass deletes older ones). Given here, it
   * replaces the `SWITCHYARD_RETAIN_*` variables. @defaultValue from the environment, else kept
   * for ever
   */
  retention?: RetentionOptions;
}

/**
 * Retention from `SWITCHYARD_RETAIN_SUCCEEDED` / `_FAILED` / `_CANCELLED`: how long a finished job
 * of that status is kept, as a duration (`7d`, `12h`, `30m`) or milliseconds; unset or blank keeps
 * it for ever. `retention` is undefined when none is set; `issues` name the malformed variables.
 */
export function retentionFromEnv(env: Record<string, string | undefined>): {
  retention: RetentionOptions | undefined;
  issues: FieldIssue[];
} {
  const retention: RetentionOptions = {};
  const issues: FieldIssue[] = [];
  for (const status of FINISHED_JOB_STATUSES) {
    const variable = `SWITCHYARD_RETAIN_${status.toUpperCase()}`;
    const value = env[variable]?.trim();
    if (!value) continue;
    try {
      retention[status] = parseDuration(/^\d+$/.test(value) ? Number(value) : value, variable);
    } catch {
      // The value is not repeated: a misplaced secret must not reach a log.
      const message = "must be a duration such as '7d', '12h', '30m', or milliseconds";
      issues.push({ path: variable, message });
    }
  }
  return { retention: Object.keys(retention).length > 0 ? retention : undefined, issues };
}

/** The environment's configuration, with every malformed variable named in one `CONFIG_ERROR`. */
function configurationFromEnv(env: Record<string, string | undefined>) {
  const retained = retentionFromEnv(env);
  let config: AzureEnvConfig | undefined;
  const issues: FieldIssue[] = [];
  try {
    config = configFromEnv(env);
  } catch (err) {
    if (!(isSwitchyardError(err) && err.code === 'CONFIG_ERROR' && err.issues)) throw err;
    issues.push(...err.issues);
  }
  issues.push(...retained.issues);
  if (!config || issues.length > 0) throw configError(issues);
  return { config, retention: retained.retention };
}

/** What {@link createYardFromEnv} built. */
export interface YardFromEnv {
  yard: Switchyard;
  config: AzureEnvConfig;
  /** The configured transports by path name (dead-letter inspection, tests). */
  transports: ReadonlyMap<string, Transport>;
  /** Where state lives: `postgres` (a server) or `pglite:<folder>` (embedded). */
  storeLocation: string;
  /**
   * The HTTP API's transport flags for this configuration (pass them as `createHttpHandler`'s
   * `transportFlags`): `use_service_bus: true` selects `servicebus`, `false` the first configured
   * path that is not Service Bus.
   */
  transportFlags: Readonly<Record<string, TransportFlag>>;
  /** The HTTP API key (`SWITCHYARD_API_KEY`), resolved, if configured. */
  apiKey(): Promise<string | undefined>;
  /** Closes the Switchyard (store, transports) and the embedded database. */
  close(): Promise<void>;
}

/**
 * Builds a Switchyard from environment variables — the one configuration the CLI, the container
 * host and the Functions app share:
 *
 * - `configFromEnv()` (see `@switchyard/azure`): Service Bus when `ENABLE_SERVICE_BUS=true`,
 *   Storage Queues when `ENABLE_STORAGE_QUEUE=true`, secrets from variables or Key Vault;
 * - the store: PostgreSQL on `DATABASE_URL` (or `DATABASE_SECRET`), else an embedded PGlite folder;
 * - the `postgres` queue transport on that same database (one database can run everything);
 * - the default path: `SWITCHYARD_DEFAULT_TRANSPORT`, else Service Bus, Storage Queues, Postgres
 *   in that order of preference among the configured ones.
 * - retention: `SWITCHYARD_RETAIN_SUCCEEDED` / `_FAILED` / `_CANCELLED` (`7d`, `12h`, or
 *   milliseconds), applied by the reconciler's pass; unset keeps finished jobs for ever.
 *
 * @throws SwitchyardError `CONFIG_ERROR` listing every bad variable.
 */
export async function createYardFromEnv(options: YardFromEnvOptions): Promise<YardFromEnv> {
  const env = options.env ?? process.env;
  const fromEnv = configurationFromEnv(env);
  const { config } = fromEnv;
  const retention = options.retention ?? fromEnv.retention;
  let pglite: PGliteLike | undefined;
  /** Releases the embedded store's folder (see {@link lockDataDir}); nothing on PostgreSQL. */
  let unlock = async () => {};
  let storeLocation = 'postgres';
  const connection = async (): Promise<
    Pick<PostgresStoreOptions, 'pglite' | 'connectionString' | 'secrets' | 'schema'>
  > => {
    if (config.database.url !== undefined)
      return {
        connectionString: config.database.url as SecretInput,
        secrets: config.secrets,
        schema: config.database.schema,
      };
    const dir = resolve(env.SWITCHYARD_DATA_DIR?.trim() || options.dataDir || '.switchyard/data');
    unlock = await lockDataDir(dir);
    const { PGlite } = await import('@electric-sql/pglite');
    try {
      pglite = (await PGlite.create(dir)) as unknown as PGliteLike;
    } catch (err) {
      await unlock();
      throw err;
    }
    storeLocation = `pglite:${dir}`;
    return { pglite, schema: config.database.schema };
  };
  const db = await connection();
  const store: Store = postgresStore(db);
  const transports: Transport[] = [];
  try {
    // The Azure SDKs load only when their path is enabled (the CLI starts faster without them).
    if (config.serviceBus.enabled) {
      const { serviceBusTransport } = await import('@switchyard/driver-servicebus');
      transports.push(
        serviceBusTransport({
          ...(config.serviceBus.connectionString === undefined
            ? { fullyQualifiedNamespace: config.serviceBus.fullyQualifiedNamespace }
            : { connectionString: config.serviceBus.connectionString }),
          secrets: config.secrets,
          queues: { stage: config.serviceBus.jobQueue, task: config.serviceBus.taskQueue },
          priorityLanes: config.serviceBus.priorityLanes,
        }),
      );
    }
    if (config.storageQueue.enabled) {
      const { storageQueueTransport } = await import('@switchyard/driver-storagequeue');
      transports.push(
        storageQueueTransport({
          ...(config.storageQueue.connectionString === undefined
            ? { accountUrl: config.storageQueue.accountUrl }
            : { connectionString: config.storageQueue.connectionString }),
          secrets: config.secrets,
          queues: { stage: config.storageQueue.jobQueue, task: config.storageQueue.taskQueue },
          priorityLanes: config.storageQueue.priorityLanes,
        }),
      );
    }
    if (
      (options.postgresTransport ?? true) ||
      transports.length === 0 ||
      config.defaultTransport === 'postgres'
    )
      transports.push(
        postgresTransport({
          ...db,
          name: 'postgres',
          visibilityTimeoutMs: options.visibilityTimeoutMs ?? 30_000,
        }),
      );
    if (options.memoryTransport || config.defaultTransport === 'memory')
      transports.push(memoryTransport({ name: 'memory' }));
  } catch (err) {
    await Promise.allSettled([store.close(), ...transports.map((t) => t.close())]);
    await pglite?.close();
    await unlock();
    throw err;
  }
  const names = transports.map((t) => t.name);
  const defaultTransport =
    config.defaultTransport && names.includes(config.defaultTransport)
      ? config.defaultTransport
      : names[0]!;
  const yard = createSwitchyard({
    jobs: options.jobs,
    store,
    transports,
    defaultTransport,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.reconcile ? { reconcile: options.reconcile } : {}),
    ...(options.schedules ? { schedules: options.schedules } : {}),
    ...(options.scheduler ? { scheduler: options.scheduler } : {}),
    ...(retention ? { retention } : {}),
  });
  return {
    yard,
    config,
    transports: new Map(transports.map((t) => [t.name, t])),
    storeLocation,
    transportFlags: serviceBusFlag(names),
    async apiKey() {
      if (config.apiKey === undefined) return undefined;
      return toCachedSecret(config.apiKey, {
        defaultSource: config.secrets,
        label: 'SWITCHYARD_API_KEY',
      }).get();
    },
    async close() {
      try {
        await yard.close();
        await pglite?.close();
      } finally {
        await unlock();
      }
    },
  };
}

/** `use_service_bus`: `true` → `servicebus`, `false` → the first other configured path. */
function serviceBusFlag(names: readonly string[]): Record<string, TransportFlag> {
  const other = names.find((n) => n !== 'servicebus');
  return {
    use_service_bus: {
      whenTrue: 'servicebus',
      ...(other === undefined ? {} : { whenFalse: other }),
    },
  };
}
