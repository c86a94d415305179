/**
 * The options of `storageQueueTransport`, their defaults, and their validation into one
 * resolved configuration (queue layout, limits, connection).
 * @module
 */

import type { TokenCredential } from '@azure/core-auth';
import type { StorageRetryOptions } from '@azure/storage-queue';
import { type ConnectionSource, resolveConnectionSource } from '@switchyard/azure/connection';
import type { FieldIssue, QueueKind, SecretInput, SecretSource } from '@switchyard/core';
import type { TransportLimits } from '@switchyard/core/driver';
import { type MessageEncoding, maxBodyBytes } from './codec.js';
import { type Lane, layoutFor, POISON_SUFFIX, queuesOf, throwIfIssues } from './names.js';
import type { StorageQueuePrices } from './prices.js';

/** Options of `storageQueueTransport`. Give exactly one of `connectionString`, `secret`, `accountUrl`. */
export interface StorageQueueTransportOptions {
  /** A Storage connection string, or a reference to a secret holding one (rotated on 403). */
  connectionString?: SecretInput;
  /** `https://<account>.queue.core.windows.net`, used with `credential` (Entra ID). */
  accountUrl?: string;
  /** Token credential for `accountUrl`. @defaultValue `azureCredential()` from `@switchyard/azure` (`DefaultAzureCredential`) */
  credential?: TokenCredential;
  /** Name of a secret holding the connection string; shorthand for `connectionString: { secret }`. */
  secret?: string;
  /** Where `secret` / secret references without a source are resolved. @defaultValue `envSecrets()` */
  secrets?: SecretSource;
  /** Queue names. @defaultValue `{ stage: 'sq-jobs', task: 'sq-tasks' }` */
  queues?: { stage?: string; task?: string };
  /** Create missing queues (lanes included, and their poison queues) on first use. @defaultValue true */
  createQueues?: boolean;
  /** Message text encoding; `base64` matches the Functions storage-queue trigger's default. @defaultValue 'base64' */
  encoding?: MessageEncoding;
  /**
   * Spread task messages over `<task>-0` … `<task>-N-1` (each queue takes ~2,000 msg/s); every
   * receiver polls all of them. 1 (the default) means the single queue `<task>`.
   */
  shards?: number;
  /**
   * Keep a lane per job priority on the task queue: `high` and `low` messages go to
   * `<task>-high` and `<task>-low` (sharded like the task queue, each with its own `-poison`
   * queue), `normal` ones stay on `<task>`, so turning lanes on strands nothing already queued.
   * Each receive reads the lanes in weighted order (6:3:1 while all are busy). Off by default:
   * every lane is polled, and a poll that finds nothing is still a billed transaction (an idle lane
   * is read about once a second per transport; see the README).
   * @defaultValue false
   */
  priorityLanes?: boolean;
  /**
   * Most Storage calls in flight at once across this transport. The transport halves it on
   * `503 ServerBusy` and grows it back one call at a time. @defaultValue 64
   */
  sendConcurrency?: number;
  /** A message received more often than this is moved to `<queue>-poison`. @defaultValue 5 */
  maxDequeueCount?: number;
  /** Visibility timeout of received messages when `receive` names none. @defaultValue 30000 */
  visibilityTimeoutMs?: number;
  /**
   * The SDK's own retry policy. The transport retries throttling (503) and server errors itself,
   * with a short back-off and a smaller concurrency, so the SDK's default (first retry after 4 s)
   * is replaced by a single try unless given here.
   * @defaultValue `{ maxTries: 1 }`
   */
  retryOptions?: StorageRetryOptions;
  /** Tasks per task message recommended to the engine (`batching.packTasks`). @defaultValue 1 */
  packTasks?: number;
  /** Prices for `estimateCost`. @defaultValue {@link STORAGE_QUEUE_LIST_PRICES} */
  prices?: StorageQueuePrices;
  /** Processing path name. @defaultValue 'storagequeue' */
  name?: string;
}

/** Default of {@link StorageQueueTransportOptions.sendConcurrency}, chosen from `npm run bench -- storagequeue`. */
export const DEFAULT_SEND_CONCURRENCY = 64;
export const MAX_RECEIVE = 32;
const BATCH_MESSAGES = 32;
/**
 * The fairness window recommended to the engine (`limits.window`): tasks of one stage waiting in
 * a queue, at least 8 messages' worth when packed. Azure Functions sizes a queue-triggered app by
 * its queue's length (target-based scaling: length ÷ the trigger's batch size, 16), so a window
 * caps the app at window ÷ 16 instances: 512 lets it reach 32, as on Service Bus. A job behind a
 * big one waits for those 512 tasks, not for the big job's thousands; hosts that do not scale by
 * queue length (`work()`) may set a smaller `batching.window` (README, Limits).
 */
const WINDOW_TASKS = 512;
const WINDOW_MESSAGES = 8;
export const MAX_VISIBILITY_S = 7 * 24 * 3600;

/** Validated options with every default applied. */
export interface ResolvedOptions {
  name: string;
  encoding: MessageEncoding;
  sendConcurrency: number;
  maxDequeueCount: number;
  defaultVisibilityMs: number;
  createQueues: boolean;
  retryOptions: StorageRetryOptions;
  /** True when the task queue keeps a lane per priority. */
  priorityLanes: boolean;
  /** Each kind's lanes: one without a priority, or (task, `priorityLanes`) high, normal, low. */
  layout: Record<QueueKind, readonly Lane[]>;
  /** Every queue with its poison queue. */
  allQueues: string[];
  limits: TransportLimits;
  connection: ConnectionSource;
}

function isPositiveInt(value: unknown, min = 1): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min;
}

/** The options that decide which Storage queues a transport uses. */
export type QueueLayoutOptions = Pick<
  StorageQueueTransportOptions,
  'queues' | 'shards' | 'priorityLanes'
>;

/** The queues a transport uses, by kind and lane. */
export interface ResolvedLayout {
  priorityLanes: boolean;
  layout: Record<QueueKind, readonly Lane[]>;
  /** Every queue with its poison queue. */
  allQueues: string[];
}

/** Validates the queue options (pushing one issue per bad field) and derives every queue name. */
export function resolveLayout(options: QueueLayoutOptions, issues: FieldIssue[]): ResolvedLayout {
  const shards = options.shards ?? 1;
  if (!isPositiveInt(shards) || shards > 1000) {
    issues.push({ path: 'shards', message: 'must be an integer from 1 to 1000' });
  }
  const priorityLanes = options.priorityLanes ?? false;
  if (typeof priorityLanes !== 'boolean') {
    issues.push({ path: 'priorityLanes', message: 'must be true or false' });
  }
  // Only task messages carry a priority (`OutgoingMessage.priority`): the stage queue has no lanes.
  const layout: Record<QueueKind, readonly Lane[]> = {
    stage: layoutFor('queues.stage', options.queues?.stage ?? 'sq-jobs', 1, issues),
    task: layoutFor(
      'queues.task',
      options.queues?.task ?? 'sq-tasks',
      isPositiveInt(shards) ? shards : 1,
      issues,
      priorityLanes === true,
    ),
  };
  const all = [...queuesOf(layout.stage), ...queuesOf(layout.task)];
  const allQueues = [...all, ...all.map((q) => `${q}${POISON_SUFFIX}`)];
  if (new Set(allQueues).size !== allQueues.length) {
    issues.push({
      path: 'queues',
      message: `stage and task queues (with their ${priorityLanes === true ? 'lane, ' : ''}shard and poison suffixes) must not overlap`,
    });
  }
  return { priorityLanes: priorityLanes === true, layout, allQueues };
}

/**
 * Validates `options` and applies the defaults.
 * @throws ValidationError (code `INVALID_INPUT`) with one issue per bad field.
 */
export function resolveOptions(options: StorageQueueTransportOptions): ResolvedOptions {
  const issues: FieldIssue[] = [];
  const encoding = options.encoding ?? 'base64';
  if (encoding !== 'base64' && encoding !== 'text') {
    issues.push({ path: 'encoding', message: `must be 'base64' or 'text'` });
  }
  const sendConcurrency = options.sendConcurrency ?? DEFAULT_SEND_CONCURRENCY;
  if (!isPositiveInt(sendConcurrency)) {
    issues.push({ path: 'sendConcurrency', message: 'must be a positive integer' });
  }
  const maxDequeueCount = options.maxDequeueCount ?? 5;
  if (!isPositiveInt(maxDequeueCount)) {
    issues.push({ path: 'maxDequeueCount', message: 'must be a positive integer' });
  }
  const defaultVisibilityMs = options.visibilityTimeoutMs ?? 30_000;
  if (!isPositiveInt(defaultVisibilityMs, 1000) || defaultVisibilityMs > MAX_VISIBILITY_S * 1000) {
    issues.push({
      path: 'visibilityTimeoutMs',
      message: 'must be an integer from 1000 to 604800000 (7 days)',
    });
  }
  const packTasks = options.packTasks ?? 1;
  if (!isPositiveInt(packTasks) || packTasks > 1000) {
    issues.push({ path: 'packTasks', message: 'must be an integer from 1 to 1000' });
  }
  const name = options.name ?? 'storagequeue';
  if (typeof name !== 'string' || name === '')
    issues.push({ path: 'name', message: 'must be a non-empty string' });
  const { priorityLanes, layout, allQueues } = resolveLayout(options, issues);
  const connection =
    issues.length === 0
      ? resolveConnectionSource(
          options,
          {
            name: 'accountUrl',
            value: options.accountUrl,
            check: (url) =>
              /^https?:\/\//.test(url)
                ? undefined
                : 'must be an http(s) URL such as https://<account>.queue.core.windows.net',
          },
          issues,
        )
      : undefined;
  throwIfIssues(issues);

  const bodyBytes = maxBodyBytes(encoding);
  return {
    name,
    encoding,
    sendConcurrency,
    maxDequeueCount,
    defaultVisibilityMs,
    createQueues: options.createQueues !== false,
    retryOptions: options.retryOptions ?? { maxTries: 1 },
    priorityLanes,
    layout,
    allQueues,
    connection: connection!,
    limits: {
      maxMessageBytes: bodyBytes,
      // Each message is its own HTTP call; a "batch" only groups calls for the concurrency bound.
      // Small batches, several times the bound in flight: the engine waits for a whole batch, so
      // one slow call must stall a small slice of the work, not drain the pool at every boundary.
      maxBatchMessages: BATCH_MESSAGES,
      maxBatchBytes: BATCH_MESSAGES * bodyBytes,
      sendConcurrency: Math.max(2, Math.ceil((sendConcurrency * 4) / BATCH_MESSAGES)),
      maxReceiveMessages: MAX_RECEIVE,
      ...(packTasks > 1 ? { packTasks } : {}),
      window: Math.max(WINDOW_TASKS, WINDOW_MESSAGES * packTasks),
    },
  };
}
