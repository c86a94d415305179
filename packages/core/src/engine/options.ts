/**
 * The one place options are checked: `resolveOptions` turns what an application passes to
 * `createSwitchyard` into {@link EngineSettings}, and `resolveWorkOptions` does the same for
 * `work()`, applying the defaults of defaults.ts. No other module re-checks an option.
 */
import type { RetryPolicy } from '../define.js';
import { MAX_PACKED_TASKS } from '../envelope.js';
import { ValidationError } from '../errors.js';
import { consoleLogger, type Logger } from '../logger.js';
import { MIN_CANCEL_CHECK_MS } from '../operations/cancel-watch.js';
import { type RetentionMs, resolveRetention } from '../operations/purge.js';
import type { TelemetryOptions } from '../telemetry/telemetry.js';
import type { Transport, TransportLimits } from '../transport.js';
import type { AnyJob, NamedJob } from './api.js';
import {
  BATCHING_KEYS,
  type BatchingOptions,
  type BatchingPolicy,
  resolvePolicy,
} from './batching.js';
import { DEFAULTS } from './defaults.js';
import { type ResolvedRetryPolicy, resolveRetry } from './retry.js';
import type { SwitchyardOptions, WorkOptions } from './types.js';

/** A configured transport with the batching policy the engine sends through. */
export interface TransportState {
  name: string;
  transport: Transport;
  policy: BatchingPolicy;
  /**
   * The transport claims the store's task rows (task-row claims: both name the same rows): a
   * fan-out offers its tasks instead of sending a message each. Set once by the context's `init`.
   */
  rowClaims?: boolean;
}

/** `createSwitchyard`'s options, checked once, with every default applied. */
export interface EngineSettings {
  jobs: ReadonlyMap<string, AnyJob>;
  transports: ReadonlyMap<string, TransportState>;
  defaultTransport: string;
  retry: ResolvedRetryPolicy;
  reconcile: { olderThanMs: number; limit: number; intervalMs: number };
  cancelCheckIntervalMs: number;
  flowControl: { slotLeaseMs: number; maxWaitMs: number };
  /** Milliseconds each final status is kept; empty: retention off. */
  retention: RetentionMs;
  logger: Logger;
  telemetry: TelemetryOptions;
}

/** `work()`'s options, checked, with every default applied. */
export interface WorkSettings {
  concurrency: number;
  /** Most tasks a task loop holds beyond `concurrency`; unset: see {@link prefetchOf}. */
  prefetch: number | undefined;
  transports: readonly string[] | undefined;
  visibilityTimeoutMs: number;
  waitMs: number;
  receivers: number;
  signal: AbortSignal | undefined;
}

export function resolveOptions(options: SwitchyardOptions<readonly NamedJob[]>): EngineSettings {
  const jobs = new Map<string, AnyJob>();
  const flowStore = typeof options.store.admitTask === 'function';
  for (const job of options.jobs as readonly AnyJob[]) {
    if (jobs.has(job.name)) invalid('jobs', `duplicate job name "${job.name}"`);
    for (const [i, stage] of job.stages.entries()) {
      checkRetry(stage.task.retry, `jobs.${job.name}.stages[${i}].task.retry`);
      if (!flowStore && (stage.task.concurrency || stage.task.rateLimit))
        invalid(
          'store',
          `task "${stage.task.name}" (job "${job.name}", stage "${stage.name}") declares ${stage.task.concurrency ? '"concurrency"' : '"rateLimit"'}, which needs a store with flow control (memory, PostgreSQL)`,
        );
    }
    jobs.set(job.name, job);
  }
  const entries = Array.isArray(options.transports)
    ? (options.transports as readonly Transport[]).map((t) => [t.name, t] as const)
    : Object.entries(options.transports as Record<string, Transport>);
  if (entries.length === 0) invalid('transports', 'at least one transport is required');
  const transports = new Map<string, TransportState>();
  for (const [name, transport] of entries) {
    if (transports.has(name)) invalid('transports', `duplicate transport name "${name}"`);
    const batching = batchingFor(options.batching, name);
    if (batching) checkBatching(batching.options, batching.field);
    transports.set(name, {
      name,
      transport,
      policy: resolvePolicy(transport.limits, batching?.options),
    });
  }
  const defaultTransport = options.defaultTransport ?? entries[0]![0];
  if (!transports.has(defaultTransport))
    invalid(
      'defaultTransport',
      `"${defaultTransport}" is not one of ${[...transports.keys()].join(', ')}`,
    );
  const reconcile = options.reconcile ?? {};
  return {
    jobs,
    transports,
    defaultTransport,
    retry: resolveRetry(DEFAULTS.retry, checkRetry(options.retry, 'retry')),
    reconcile: {
      olderThanMs: positive(
        'reconcile.olderThanMs',
        reconcile.olderThanMs,
        DEFAULTS.reconcile.olderThanMs,
      ),
      limit: positiveInteger('reconcile.limit', reconcile.limit, DEFAULTS.reconcile.limit),
      intervalMs: nonNegative(
        'reconcile.intervalMs',
        reconcile.intervalMs,
        DEFAULTS.reconcile.intervalMs,
      ),
    },
    cancelCheckIntervalMs: atLeast('cancelCheckIntervalMs', options.cancelCheckIntervalMs, {
      min: MIN_CANCEL_CHECK_MS,
      fallback: DEFAULTS.cancelCheckIntervalMs,
    }),
    flowControl: {
      slotLeaseMs: integerAtLeast('flowControl.slotLeaseMs', options.flowControl?.slotLeaseMs, {
        min: MIN_SLOT_LEASE_MS,
        fallback: DEFAULTS.flowControl.slotLeaseMs,
      }),
      maxWaitMs: positiveInteger(
        'flowControl.maxWaitMs',
        options.flowControl?.maxWaitMs,
        DEFAULTS.flowControl.maxWaitMs,
      ),
    },
    retention: options.retention === undefined ? {} : resolveRetention(options.retention),
    logger: options.logger ?? consoleLogger,
    telemetry: options.telemetry ?? {},
  };
}

/** Shortest key-slot lease: renewed every third of it, a shorter one would be renewed too often. */
const MIN_SLOT_LEASE_MS = 300;

export function resolveWorkOptions(options: WorkOptions): WorkSettings {
  const d = DEFAULTS.work;
  return {
    concurrency: positiveInteger('concurrency', options.concurrency, d.concurrency),
    prefetch:
      options.prefetch === undefined
        ? undefined
        : integerAtLeast('prefetch', options.prefetch, { min: 0, fallback: 0 }),
    transports: options.transports,
    visibilityTimeoutMs: positive(
      'visibilityTimeoutMs',
      options.visibilityTimeoutMs,
      d.visibilityTimeoutMs,
    ),
    waitMs: nonNegative('waitMs', options.waitMs, d.waitMs),
    receivers: positiveInteger('receivers', options.receivers, d.receivers),
    signal: options.signal,
  };
}

/**
 * The prefetch of a task loop on a transport: `work({ prefetch })`, else the transport's
 * recommendation per slot (`limits.prefetchPerSlot`) times the slots, else
 * `DEFAULTS.work.prefetch`.
 */
export function prefetchOf(settings: WorkSettings, limits: TransportLimits): number {
  if (settings.prefetch !== undefined) return settings.prefetch;
  const perSlot = limits.prefetchPerSlot;
  // A driver's value is not the user's input: one that is no positive number recommends nothing.
  return typeof perSlot === 'number' && Number.isFinite(perSlot) && perSlot > 0
    ? Math.floor(perSlot * settings.concurrency)
    : DEFAULTS.work.prefetch;
}

/** The batching options that apply to one transport (its own entry, or the shared ones), and their field. */
function batchingFor(
  batching: SwitchyardOptions<readonly NamedJob[]>['batching'],
  name: string,
): { options: BatchingOptions; field: string } | undefined {
  if (!batching) return undefined;
  const own = (batching as Record<string, unknown>)[name];
  if (own && typeof own === 'object')
    return { options: own as BatchingOptions, field: `batching.${name}` };
  const shared: readonly string[] = BATCHING_KEYS;
  return Object.keys(batching).some((k) => shared.includes(k))
    ? { options: batching as BatchingOptions, field: 'batching' }
    : undefined;
}

function checkBatching(options: BatchingOptions, field: string): void {
  for (const key of ['maxMessages', 'maxBytes', 'concurrency', 'chunkSize'] as const)
    positiveInteger(`${field}.${key}`, options[key], 1);
  const pack = options.packTasks;
  if (pack !== undefined && (!Number.isInteger(pack) || pack < 1 || pack > MAX_PACKED_TASKS))
    invalid(`${field}.packTasks`, `must be an integer from 1 to ${MAX_PACKED_TASKS}`);
  const window = options.window;
  if (window !== undefined && window !== false && !(Number.isSafeInteger(window) && window >= 1))
    invalid(`${field}.window`, 'must be a positive integer or false');
}

/**
 * Checks a retry policy's fields (the application's, or a task's own).
 * @throws {ValidationError} naming the field under `field`
 */
export function checkRetry(
  policy: RetryPolicy | undefined,
  field: string,
): RetryPolicy | undefined {
  if (!policy) return policy;
  positiveInteger(`${field}.maxAttempts`, policy.maxAttempts, 1);
  nonNegative(`${field}.initialDelayMs`, policy.initialDelayMs, 0);
  nonNegative(`${field}.maxDelayMs`, policy.maxDelayMs, 0);
  if (policy.factor !== undefined && (!Number.isFinite(policy.factor) || policy.factor < 1))
    invalid(`${field}.factor`, 'must be a number ≥ 1');
  if (policy.jitter !== undefined && !(policy.jitter >= 0 && policy.jitter <= 1))
    invalid(`${field}.jitter`, 'must be a number from 0 to 1');
  return policy;
}

function invalid(field: string, message: string): never {
  throw new ValidationError(`${field}: ${message}`, [{ path: field, message }]);
}

function positiveInteger(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) invalid(field, 'must be a positive integer');
  return value;
}

function positive(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) invalid(field, 'must be a positive number');
  return value;
}

/** A number option's lower bound, and its value when unset. */
interface Bound {
  min: number;
  fallback: number;
}

function atLeast(field: string, value: number | undefined, { min, fallback }: Bound): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < min) invalid(field, `must be a number ≥ ${min}`);
  return value;
}

function integerAtLeast(
  field: string,
  value: number | undefined,
  { min, fallback }: Bound,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min) invalid(field, `must be an integer ≥ ${min}`);
  return value;
}

function nonNegative(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) invalid(field, 'must be a number ≥ 0');
  return value;
}
