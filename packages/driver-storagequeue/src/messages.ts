/**
 * `QueueMessages`: the message-level operations of one transport on its storage queues — put,
 * receive (moving over-delivered messages to the poison queue), delete, change visibility, and
 * move to `<queue>-poison` — and the handle a received message keeps out of the public object.
 * @module
 */

import type { DequeuedMessageItem } from '@azure/storage-queue';
import { type Priority, type QueueKind, ValidationError } from '@switchyard/core';
import type { ReceivedMessage } from '@switchyard/core/driver';
import type { QueueClients } from './clients.js';
import {
  decodeText,
  encodeBody,
  formatPoisonMessage,
  MAX_MESSAGE_TEXT_BYTES,
  type MessageEncoding,
  type PoisonHeader,
} from './codec.js';
import { backendError, isLostReceipt } from './errors.js';
import { POISON_SUFFIX } from './names.js';
import { MAX_VISIBILITY_S } from './options.js';

/** Where a received message lives, kept out of the public message object. */
export interface Handle {
  storageQueue: string;
  /** The message's current pop receipt: each visibility update replaces it. */
  popReceipt: string;
  /** The message text as stored (for poison fidelity). */
  text: string;
  raw: boolean;
  /** A settlement was asked for: a lock extension asked for since is not made (see `inTurn`). */
  settled: boolean;
  /** The message's latest operation, settled or not (never rejects): the next one waits for it. */
  busy: Promise<void> | undefined;
}

const handles = new WeakMap<ReceivedMessage, Handle>();

/** The handle of a message this transport received. @throws ValidationError for any other message. */
export function handleOf(message: ReceivedMessage): Handle {
  const handle = handles.get(message);
  if (!handle)
    throw new ValidationError('message was not received from this storage queue transport');
  return handle;
}

/**
 * Runs `op` on a received message once the operations asked for on it before have answered.
 *
 * Every visibility update gives a message a new pop receipt, and Storage refuses the old one from
 * then on, as it does once the message was received again (which is why settlements ignore the
 * refusal). Two operations on one message must therefore not be in flight together: a delete sent
 * while a lock extension is under way (a worker renews locks on a timer) may carry the receipt the
 * extension is replacing and be refused, and the completed message is delivered again once the
 * extension runs out. In turn, each op reads the receipt the one before it left in the handle.
 */
export function inTurn(handle: Handle, op: () => Promise<void>): Promise<void> {
  const run = handle.busy ? handle.busy.then(op) : op();
  handle.busy = run.catch(() => undefined);
  return run;
}

class StorageQueueMessage implements ReceivedMessage {
  /** Its lane; absent on the stage queue and when the task queue has no lanes. */
  declare readonly priority?: Priority;

  constructor(
    readonly queue: QueueKind,
    readonly id: string,
    readonly body: string,
    readonly deliveryCount: number,
    readonly enqueuedAt: Date | undefined,
    priority: Priority | undefined,
  ) {
    if (priority !== undefined) this.priority = priority;
  }
}

/** Milliseconds as the whole seconds Storage takes, within its 7-day bound. */
export function seconds(ms: number): number {
  return Math.min(MAX_VISIBILITY_S, Math.max(0, Math.ceil(ms / 1000)));
}

/** A message about to be moved to its poison queue. */
export interface PoisonItem {
  id: string;
  popReceipt: string;
  text: string;
  raw: boolean;
  body: string;
  dequeueCount: number;
}

export class QueueMessages {
  constructor(
    private readonly clients: QueueClients,
    private readonly encoding: MessageEncoding,
    private readonly maxDequeueCount: number,
  ) {}

  /** Sends one message; resolves with the id the service gave it. */
  async sendText(
    queue: string,
    text: string,
    delayMs: number,
    abortSignal?: AbortSignal,
  ): Promise<string> {
    const response = await this.clients.run('putMessage', queue, (c) =>
      c.sendMessage(text, {
        visibilityTimeout: seconds(delayMs),
        // Never expire (the default is 7 days): a task message may wait behind a long stage, and a
        // silently expired message would leave its task pending forever. The store, not the queue,
        // decides when work is abandoned (DESIGN invariant 6: nothing may drop work unnoticed).
        messageTimeToLive: -1,
        abortSignal,
      }),
    );
    return response.messageId;
  }

  /** Deletes a message; a lost pop receipt (received again, or gone) is not an error. */
  async deleteQuietly(queue: string, id: string, popReceipt: string): Promise<void> {
    try {
      await this.clients.call('deleteMessage', queue, (c) => c.deleteMessage(id, popReceipt));
    } catch (err) {
      if (!isLostReceipt(err)) throw backendError('deleteMessage', queue, err);
    }
  }

  /** Makes a received message invisible for `ms` more (keeps its text). */
  async updateVisibility(handle: Handle, id: string, ms: number): Promise<void> {
    try {
      const response = await this.clients.call('updateMessage', handle.storageQueue, (c) =>
        c.updateMessage(id, handle.popReceipt, undefined, seconds(ms)),
      );
      if (response.popReceipt) handle.popReceipt = response.popReceipt;
    } catch (err) {
      if (!isLostReceipt(err)) throw backendError('updateMessage', handle.storageQueue, err);
    }
  }

  /** Moves a message to `<queue>-poison` (header + original body), then deletes the original. */
  async poison(
    kind: QueueKind,
    storageQueue: string,
    item: PoisonItem,
    reason: string,
    description: string | undefined,
  ): Promise<void> {
    const header: PoisonHeader = {
      v: 1,
      reason,
      ...(description === undefined ? {} : { description }),
      kind,
      queue: storageQueue,
      messageId: item.id,
      dequeueCount: item.dequeueCount,
      deadLetteredAt: new Date().toISOString(),
      ...(item.raw ? { raw: true } : {}),
    };
    let text = encodeBody(
      formatPoisonMessage(header, item.raw ? item.text : item.body),
      this.encoding,
    );
    // Only a foreign, near-limit message can overflow; keep it verbatim (reason lost) rather than lose it.
    if (Buffer.byteLength(text) > MAX_MESSAGE_TEXT_BYTES) text = item.text;
    await this.sendText(`${storageQueue}${POISON_SUFFIX}`, text, 0);
    await this.deleteQuietly(storageQueue, item.id, item.popReceipt);
  }

  /**
   * Receives up to `max` messages from one storage queue (of the lane `priority`, if the kind has
   * lanes); a message dequeued more than `maxDequeueCount` times is moved to the poison queue
   * instead of returned.
   */
  async receiveFrom(
    kind: QueueKind,
    storageQueue: string,
    max: number,
    visibilityS: number,
    abortSignal: AbortSignal,
    priority?: Priority,
  ): Promise<ReceivedMessage[]> {
    const response = await this.clients.run('getMessages', storageQueue, (c) =>
      c.receiveMessages({ numberOfMessages: max, visibilityTimeout: visibilityS, abortSignal }),
    );
    const out: ReceivedMessage[] = [];
    const poisoned: Promise<void>[] = [];
    for (const item of response.receivedMessageItems as DequeuedMessageItem[]) {
      const { body, raw } = decodeText(item.messageText, this.encoding);
      if (item.dequeueCount > this.maxDequeueCount) {
        const poisonItem = {
          id: item.messageId,
          popReceipt: item.popReceipt,
          text: item.messageText,
          raw,
          body,
          dequeueCount: item.dequeueCount,
        };
        poisoned.push(
          this.poison(
            kind,
            storageQueue,
            poisonItem,
            'MaxDequeueCountExceeded',
            `dequeued ${item.dequeueCount} times (maxDequeueCount ${this.maxDequeueCount})`,
          ),
        );
        continue;
      }
      const message = new StorageQueueMessage(
        kind,
        item.messageId,
        body,
        item.dequeueCount,
        item.insertedOn,
        priority,
      );
      handles.set(message, {
        storageQueue,
        popReceipt: item.popReceipt,
        text: item.messageText,
        raw,
        settled: false,
        busy: undefined,
      });
      out.push(message);
    }
    // A failed move leaves the message in place; it comes back and is moved next time.
    await Promise.allSettled(poisoned);
    return out;
  }
}
