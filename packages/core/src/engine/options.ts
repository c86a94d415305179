/**
 * The one place options are checked: `resolveOptions` turns what an application passes to
 * `createSwitchyard` into {@link EngineSettings}, and `resolveWorkOptions` does the same for
 * `work()`, applying the defaults of defaults.ts. No other module re-checks an option.
 */
import { ValidationError } from '../errors.js';
import { consoleLogger, type Logger } from '../logger.js';
import type { TelemetryOptions } from '../telemetry/telemetry.js';
import type { Transport } from '../transport.js';
import type { AnyJob, NamedJob } from './api.js';
import { type BatchingOptions, type BatchingPolicy, resolvePolicy } from './batching.js';
import { DEFAULTS } from './defaults.js';
import { type ResolvedRetryPolicy, resolveRetry } from './retry.js';
import type { SwitchyardOptions, WorkOptions } from './types.js';

/** A configured transport with the batching policy the engine sends through. */
export interface TransportState {
  name: string;
  transport: Transport;
  policy: BatchingPolicy;
}

/** `createSwitchyard`'s options, checked once, with every default applied. */
export interface EngineSettings {
  jobs: ReadonlyMap<string, AnyJob>;
  transports: ReadonlyMap<string, TransportState>;
  defaultTransport: string;
  retry: ResolvedRetryPolicy;
  reconcile: { olderThanMs: number; limit: number; intervalMs: number };
  logger: Logger;
  telemetry: TelemetryOptions;
}

/** `work()`'s options, checked, with every default applied. */
export interface WorkSettings {
  concurrency: number;
  transports: readonly string[] | undefined;
  visibilityTimeoutMs: number;
  waitMs: number;
  receivers: number;
  signal: AbortSignal | undefined;
}

export function resolveOptions(options: SwitchyardOptions<readonly NamedJob[]>): EngineSettings {
  const jobs = new Map<string, AnyJob>();
  for (const job of options.jobs as readonly AnyJob[]) {
    if (jobs.has(job.name)) invalid('jobs', `duplicate job name "${job.name}"`);
    jobs.set(job.name, job);
  }
  const entries = Array.isArray(options.transports)
    ? (options.transports as readonly Transport[]).map((t) => [t.name, t] as const)
    : Object.entries(options.transports as Record<string, Transport>);
  if (entries.length === 0) invalid('transports', 'at least one transport is required');
  const transports = new Map<string, TransportState>();
  for (const [name, transport] of entries) {
    if (transports.has(name)) invalid('transports', `duplicate transport name "${name}"`);
    transports.set(name, {
      name,
      transport,
      policy: resolvePolicy(transport.limits, batchingFor(options.batching, name)),
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
    retry: resolveRetry(DEFAULTS.retry, options.retry),
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
    logger: options.logger ?? consoleLogger,
    telemetry: options.telemetry ?? {},
  };
}

export function resolveWorkOptions(options: WorkOptions): WorkSettings {
  const d = DEFAULTS.work;
  return {
    concurrency: positiveInteger('concurrency', options.concurrency, d.concurrency),
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

/** The batching options that apply to one transport: its own entry, or the shared ones. */
function batchingFor(
  batching: SwitchyardOptions<readonly NamedJob[]>['batching'],
  name: string,
): BatchingOptions | undefined {
  if (!batching) return undefined;
  const own = (batching as Record<string, unknown>)[name];
  if (own && typeof own === 'object') return own as BatchingOptions;
  const shared = ['maxMessages', 'maxBytes', 'concurrency', 'chunkSize', 'packTasks'];
  return Object.keys(batching).some((k) => shared.includes(k))
    ? (batching as BatchingOptions)
    : undefined;
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

function nonNegative(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) invalid(field, 'must be a number ≥ 0');
  return value;
}
