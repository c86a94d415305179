import pLimit from 'p-limit';
import { MAX_PACKED_TASKS } from '../envelope.js';
import { ValidationError } from '../errors.js';
import type { OutgoingMessage, Transport, TransportLimits } from '../transport.js';
import { DEFAULTS } from './defaults.js';

/** Overrides of the batching policy; the rest comes from the transport's limits. */
export interface BatchingOptions {
  /** Most messages per send. Capped by the transport's `maxBatchMessages`. */
  maxMessages?: number;
  /** Most bytes per send. Capped by the transport's `maxBatchBytes`. */
  maxBytes?: number;
  /** Concurrent sends of one fan-out. @defaultValue the transport's `sendConcurrency` */
  concurrency?: number;
  /** Tasks inserted and sent per fan-out chunk. @defaultValue 2000 */
  chunkSize?: number;
  /**
   * Tasks per task message (at most 1000). Packing K tasks of a fan-out chunk into one message
   * divides the transport operations per task by K (sends, receives, settlements — and billed
   * operations on Service Bus and Storage). A worker runs a pack's tasks concurrently (within its
   * concurrency) and settles the message once all are recorded; a task that must be retried or
   * dead-lettered is split out into a message of its own. A worker's `concurrency` counts tasks
   * (a pack's tasks each take a slot and give it back as they end), and it asks for as many
   * messages as its free slots need at the pack size it sees, so workers need not share the
   * submitters' setting.
   * @defaultValue the transport's recommendation (`limits.packTasks`: the PostgreSQL transport
   * recommends 64, the Azure transports their tier's), else 1 (one message per task). The
   * recommendation is applied so that a small stage still spreads over workers: a fan-out chunk
   * of n tasks packs at most ⌈n / 16⌉ per message (a value set here is applied as it is).
   */
  packTasks?: number;
  /**
   * Fairness between jobs: most tasks of one stage waiting in the transport's queue — released
   * into it, and neither running on a worker nor finished. Every task row is inserted by the
   * fan-out, but a task's message is sent only once it fits in its stage's window; each barrier
   * batch releases as many as its stage's queue has room for. Jobs sharing a transport therefore
   * interleave in its queue, and a small job submitted behind a 100,000-task job waits for at
   * most a window of that job's tasks, not for all of them. Tasks the workers took do not count,
   * so the window does not limit how many run at once, whatever the fleet's size. `false` sends
   * every task as its chunk is inserted.
   * Azure Functions sizes a queue-triggered app by queue length, so the window also caps its
   * scale-out at window ÷ the trigger's concurrency per instance (16 by default).
   * @defaultValue the transport's recommendation (`limits.window`: Service Bus and Storage Queues
   * 512), else 1024
   */
  window?: number | false;
}

/** Every batching option's name: an object with one of them is a shared `batching` setting. */
export const BATCHING_KEYS = [
  'maxMessages',
  'maxBytes',
  'concurrency',
  'chunkSize',
  'packTasks',
  'window',
] as const satisfies readonly (keyof BatchingOptions)[];

export interface BatchingPolicy {
  maxMessages: number;
  maxBytes: number;
  concurrency: number;
  chunkSize: number;
  packTasks: number;
  /**
   * With `packTasks` taken from the transport's recommendation, a fan-out chunk of n tasks packs
   * at most ⌈n / spreadOver⌉ per message; `undefined` (packTasks set by the user): exactly
   * `packTasks`.
   */
  spreadOver: number | undefined;
  /** Tasks of one stage released at once; `undefined`: every task as it is inserted. */
  window: number | undefined;
}

export function resolvePolicy(
  limits: TransportLimits,
  options: BatchingOptions = {},
): BatchingPolicy {
  return {
    maxMessages: Math.max(
      1,
      Math.min(options.maxMessages ?? limits.maxBatchMessages, limits.maxBatchMessages),
    ),
    maxBytes: Math.max(1, Math.min(options.maxBytes ?? limits.maxBatchBytes, limits.maxBatchBytes)),
    concurrency: Math.max(1, options.concurrency ?? limits.sendConcurrency),
    chunkSize: Math.max(1, options.chunkSize ?? DEFAULTS.batching.chunkSize),
    packTasks: packTasksOf(options.packTasks ?? limits.packTasks),
    spreadOver: options.packTasks === undefined ? DEFAULTS.batching.spreadOver : undefined,
    window: windowOf(options.window, limits.window),
  };
}

/**
 * The window a policy applies: the user's (checked with the other options, in options.ts), else
 * the transport's recommendation, else the engine's.
 */
function windowOf(
  value: number | false | undefined,
  recommended: number | undefined,
): number | undefined {
  if (value === false) return undefined;
  if (value !== undefined) return value;
  if (recommended === undefined) return DEFAULTS.batching.window;
  if (!Number.isSafeInteger(recommended) || recommended < 1) {
    const message = 'must be a positive integer';
    throw new ValidationError(`the transport's limits.window ${message}`, [
      { path: 'limits.window', message },
    ]);
  }
  return recommended;
}

function packTasksOf(value: number | undefined): number {
  if (value === undefined) return DEFAULTS.batching.packTasks;
  if (!Number.isInteger(value) || value < 1 || value > MAX_PACKED_TASKS) {
    const message = `must be an integer from 1 to ${MAX_PACKED_TASKS}`;
    throw new ValidationError(`batching.packTasks ${message}`, [
      { path: 'batching.packTasks', message },
    ]);
  }
  return value;
}

/** Splits messages into batches within the policy's message and byte bounds. */
export function toBatches(
  messages: readonly OutgoingMessage[],
  policy: BatchingPolicy,
): OutgoingMessage[][] {
  const batches: OutgoingMessage[][] = [];
  let current: OutgoingMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    // UTF-16 length ×3 bounds the UTF-8 size; only measure exactly when it could matter.
    const size =
      message.body.length * 3 > policy.maxBytes / 64
        ? Buffer.byteLength(message.body)
        : message.body.length * 3;
    if (
      current.length > 0 &&
      (current.length >= policy.maxMessages || bytes + size > policy.maxBytes)
    ) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/**
 * Sends task messages through the transport's batching policy: batches in parallel, bounded by
 * `limit` (a fan-out shares one across its chunks) or by the policy's concurrency.
 */
export async function sendBatched(
  { transport, policy }: { transport: Transport; policy: BatchingPolicy },
  messages: readonly OutgoingMessage[],
  limit: ReturnType<typeof pLimit> = pLimit(policy.concurrency),
): Promise<void> {
  const batches = toBatches(messages, policy);
  if (batches.length === 1) return transport.send('task', batches[0]!);
  await Promise.all(batches.map((batch) => limit(() => transport.send('task', batch))));
}
