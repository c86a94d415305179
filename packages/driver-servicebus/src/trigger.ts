/**
 * Azure Functions interop: the queues a Functions app triggers on, and an `app.serviceBusQueue`
 * invocation turned into the arguments of `yard.handle(body, meta)`.
 * @module
 */
import { type FieldIssue, type QueueKind, ValidationError } from '@switchyard/core';
import type { Priority } from '@switchyard/core/driver';
import { checkLaneNames, laneQueues, queueNamesOf } from './lanes.js';

/** The slice of a Functions `InvocationContext` the helper reads. */
export interface ServiceBusTriggerContext {
  triggerMetadata?: {
    deliveryCount?: unknown;
    messageId?: unknown;
    enqueuedTimeUtc?: unknown;
    [key: string]: unknown;
  };
}

/** Options of {@link serviceBusTriggerQueues}: the transport's own, so both name the same queues. */
export interface ServiceBusTriggerQueuesOptions {
  /** As the transport's `queues`. @defaultValue `{ stage: 'sb-jobs', task: 'sb-tasks' }` */
  queues?: { stage?: string; task?: string };
  /** As the transport's `priorityLanes`: the task queue's lanes need a trigger each. @defaultValue false */
  priorityLanes?: boolean;
}

/** One Service Bus queue a Functions app needs a trigger on. */
export interface ServiceBusTriggerQueue {
  /** The Service Bus queue: `queueName` of `app.serviceBusQueue`. */
  queueName: string;
  /** The Switchyard queue it carries: `queue` of {@link fromServiceBusTrigger}. */
  queue: QueueKind;
  /** The lane, for a task queue with `priorityLanes`. */
  priority?: Priority;
}

/**
 * The queues a Functions app registers one `app.serviceBusQueue` trigger on each: the stage
 * queue, and the task queue — or, with `priorityLanes`, each of its lanes (`<task>-high`, the
 * task queue, `<task>-low`), since a trigger listens on one queue and a lane without one is never
 * read. Throws a `ValidationError` naming the field for a name the lanes cannot derive from.
 *
 * @example
 * ```ts
 * for (const { queueName, queue } of serviceBusTriggerQueues({ priorityLanes: true })) {
 *   app.serviceBusQueue(`switchyard-${queueName}`, { queueName, connection: 'SERVICEBUS', handler: async (message, context) => {
 *     const { body, meta } = fromServiceBusTrigger(message, context, { queue });
 *     const outcome = await yard.handle(body, meta);
 *     if (outcome.action === 'retry') throw new Error('retry');
 *   } });
 * }
 * ```
 */
export function serviceBusTriggerQueues(
  options: ServiceBusTriggerQueuesOptions = {},
): ServiceBusTriggerQueue[] {
  const names = queueNamesOf(options.queues);
  const stage: ServiceBusTriggerQueue = { queueName: names.stage, queue: 'stage' };
  if (options.priorityLanes !== true) return [stage, { queueName: names.task, queue: 'task' }];
  const issues: FieldIssue[] = [];
  checkLaneNames(names, issues);
  if (issues.length > 0) {
    const first = issues[0]!;
    throw new ValidationError(`serviceBusTriggerQueues: ${first.path} ${first.message}`, issues);
  }
  return [
    stage,
    ...laneQueues(names.task).map(({ lane, queueName }) => ({
      queueName,
      queue: 'task' as const,
      priority: lane,
    })),
  ];
}

/** Options of {@link fromServiceBusTrigger}. */
export interface ServiceBusTriggerOptions {
  /** Which Switchyard queue the trigger listens on. @defaultValue 'task' */
  queue?: QueueKind;
  /** The queue's `maxDeliveryCount` (after it, the service dead-letters with `MaxDeliveryCountExceeded`). @defaultValue 10 */
  maxDeliveryCount?: number;
}

/** Delivery facts for `yard.handle`, in Switchyard's terms. */
export interface ServiceBusTriggerMeta {
  queue: QueueKind;
  /** 1 on the first delivery (the Functions host reports it that way). */
  deliveryCount: number;
  messageId: string | undefined;
  enqueuedAt?: Date;
  /** Deliveries the host makes before the service dead-letters the message. */
  maxDeliveries: number;
}

/** What {@link fromServiceBusTrigger} returns: the envelope text and its delivery facts. */
export interface ServiceBusTriggerInput {
  body: string;
  meta: ServiceBusTriggerMeta;
}

/**
 * Normalises a Service Bus trigger invocation. The host may hand over an already-parsed object
 * (JSON bodies), a string, or a Buffer; all become the envelope text.
 *
 * Settlement in Functions: return normally → the host completes; throw → the host abandons and
 * the message comes back until `maxDeliveryCount`, then the service dead-letters it with reason
 * `MaxDeliveryCountExceeded`. For an explicit dead-letter with Switchyard's reason, use the
 * settlement actions of `@azure/functions-extensions-servicebus` (preview) where available.
 *
 * @example
 * ```ts
 * app.serviceBusQueue('tasks', { queueName: 'sb-tasks', connection: 'SERVICEBUS', handler: async (message, context) => {
 *   const { body, meta } = fromServiceBusTrigger(message, context, { queue: 'task' });
 *   const outcome = await yard.handle(body, meta);
 *   if (outcome.action === 'retry') throw new Error('retry');
 * } });
 * ```
 */
export function fromServiceBusTrigger(
  message: unknown,
  context: ServiceBusTriggerContext,
  options: ServiceBusTriggerOptions = {},
): ServiceBusTriggerInput {
  const metadata = context.triggerMetadata ?? {};
  const rawCount = Number(metadata.deliveryCount);
  const messageId = metadata.messageId;
  const meta: ServiceBusTriggerMeta = {
    queue: options.queue ?? 'task',
    deliveryCount: Number.isFinite(rawCount) && rawCount >= 1 ? Math.floor(rawCount) : 1,
    messageId:
      typeof messageId === 'string'
        ? messageId
        : messageId === undefined || messageId === null
          ? undefined
          : String(messageId),
    maxDeliveries: options.maxDeliveryCount ?? 10,
  };
  const enqueuedAt = toDate(metadata.enqueuedTimeUtc);
  if (enqueuedAt) meta.enqueuedAt = enqueuedAt;
  return { body: bodyText(message), meta };
}

function bodyText(message: unknown): string {
  if (typeof message === 'string') return message;
  if (message instanceof Uint8Array)
    return Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString('utf8');
  if (message instanceof ArrayBuffer) return Buffer.from(message).toString('utf8');
  if (message === undefined || message === null) return '';
  // An object the host parsed from JSON: re-serialise (the engine parses it again).
  return JSON.stringify(message);
}

function toDate(value: unknown): Date | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value;
  if (typeof value === 'string' || typeof value === 'number') {
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? undefined : d;
  }
  return undefined;
}
