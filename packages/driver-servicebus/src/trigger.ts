/**
 * Azure Functions interop: turn an `app.serviceBusQueue` invocation into the arguments of
 * `yard.handle(body, meta)`.
 * @module
 */
import type { QueueKind } from '@switchyard/core';

/** The slice of a Functions `InvocationContext` the helper reads. */
export interface ServiceBusTriggerContext {
  triggerMetadata?: {
    deliveryCount?: unknown;
    messageId?: unknown;
    enqueuedTimeUtc?: unknown;
    [key: string]: unknown;
  };
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
