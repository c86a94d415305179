import type { FieldIssue, Priority, QueueKind } from '@switchyard/core';
import { throwIfIssues } from './names.js';
import { type QueueLayoutOptions, resolveLayout } from './options.js';

/** Trigger metadata the Azure Functions storage-queue trigger passes in `context.triggerMetadata`. */
export interface StorageQueueTriggerMetadata {
  dequeueCount?: number | string;
  id?: string;
  popReceipt?: string;
  insertionTime?: Date | string;
  [key: string]: unknown;
}

/** Delivery metadata for `yard.handle(body, meta)`. */
export interface StorageQueueDeliveryMeta {
  queue: QueueKind;
  /** The trigger's `dequeueCount` (1 on first delivery). */
  deliveryCount: number;
  messageId: string;
  enqueuedAt?: Date;
  /** After this many deliveries the Functions host moves the message to `<queue>-poison`. */
  maxDeliveries: number;
}

/** What {@link fromStorageQueueTrigger} returns: the envelope text and its delivery metadata. */
export interface StorageQueueTriggerInput {
  body: string;
  meta: StorageQueueDeliveryMeta;
}

function bodyText(message: unknown): string {
  if (typeof message === 'string') return message;
  if (message instanceof Uint8Array) return Buffer.from(message).toString('utf8');
  if (message instanceof ArrayBuffer) return Buffer.from(message).toString('utf8');
  // The Functions host hands JSON message text over already parsed.
  return JSON.stringify(message) ?? String(message);
}

/**
 * Turns one Azure Functions storage-queue trigger invocation into the `(body, meta)` pair for
 * `yard.handle`. The host has already base64-decoded the message; it may pass the text, a
 * Buffer, or (for JSON text) the parsed object. In Functions, "retry" means throwing (the host
 * makes the message visible again after host.json's `visibilityTimeout`) and "poison" happens in
 * the host, which moves the message to `<queue>-poison` after `maxDequeueCount` deliveries.
 *
 * Bind one trigger per queue {@link storageQueueTriggerQueues} lists: with `shards` or
 * `priorityLanes` the task messages are spread over several queues.
 *
 * @example
 * ```ts
 * app.storageQueue('tasks', { queueName: 'sq-tasks', connection: 'STORAGE', handler: async (msg, context) => {
 *   const { body, meta } = fromStorageQueueTrigger(msg, context, { queue: 'task' });
 *   await yard.handle(body, meta);
 * } });
 * ```
 */
export function fromStorageQueueTrigger(
  queueMessage: unknown,
  context: { triggerMetadata?: StorageQueueTriggerMetadata | Record<string, unknown> },
  options: { queue?: QueueKind; maxDequeueCount?: number } = {},
): StorageQueueTriggerInput {
  const md = (context.triggerMetadata ?? {}) as StorageQueueTriggerMetadata;
  const dequeueCount = Number(md.dequeueCount);
  const inserted =
    md.insertionTime instanceof Date
      ? md.insertionTime
      : typeof md.insertionTime === 'string'
        ? new Date(md.insertionTime)
        : undefined;
  const meta: StorageQueueDeliveryMeta = {
    queue: options.queue ?? 'task',
    deliveryCount: Number.isInteger(dequeueCount) && dequeueCount > 0 ? dequeueCount : 1,
    messageId: typeof md.id === 'string' ? md.id : '',
    maxDeliveries: options.maxDequeueCount ?? 5,
  };
  if (inserted && !Number.isNaN(inserted.getTime())) meta.enqueuedAt = inserted;
  return { body: bodyText(queueMessage), meta };
}

/** A queue a Functions app binds a storage-queue trigger to. */
export interface StorageQueueTriggerQueue {
  /** The Storage queue: the trigger's `queueName`. */
  queueName: string;
  /** Its kind, for `fromStorageQueueTrigger(…, { queue })`. */
  queue: QueueKind;
  /** The priority lane it carries, when the task queue has lanes (`priorityLanes`). */
  priority?: Priority;
}

/**
 * Every queue a Functions app needs a storage-queue trigger on to process what a
 * `storageQueueTransport` with the same `queues`, `shards` and `priorityLanes` sends: the stage
 * queue, then the task queue's — each shard of each lane, highest lane first. The host polls each
 * of them on its own (the transport's weighted lane order does not apply there).
 *
 * @throws ValidationError (code `INVALID_INPUT`) naming the field, for options the transport rejects.
 * @example
 * ```ts
 * for (const { queueName, queue } of storageQueueTriggerQueues({ priorityLanes: true })) {
 *   app.storageQueue(queueName, { queueName, connection: 'STORAGE', handler: async (msg, context) => {
 *     const { body, meta } = fromStorageQueueTrigger(msg, context, { queue });
 *     await yard.handle(body, meta);
 *   } });
 * }
 * ```
 */
export function storageQueueTriggerQueues(
  options: QueueLayoutOptions = {},
): StorageQueueTriggerQueue[] {
  const issues: FieldIssue[] = [];
  const { layout } = resolveLayout(options, issues);
  throwIfIssues(issues);
  const kinds: QueueKind[] = ['stage', 'task'];
  return kinds.flatMap((queue) =>
    layout[queue].flatMap((lane) =>
      lane.queues.map((queueName) => ({
        queueName,
        queue,
        ...(lane.priority === undefined ? {} : { priority: lane.priority }),
      })),
    ),
  );
}
