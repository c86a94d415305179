/**
 * Listing and replaying the poison queues (`<queue>-poison`), which hold this transport's dead
 * letters (`#switchyard-poison {header}\n<body>`) and those the Functions host moved there.
 * @module
 */

import type { QueueKind } from '@switchyard/core';
import type { DeadLetter } from '@switchyard/core/driver';
import type { QueueClients } from './clients.js';
import { decodeText, encodeBody, type MessageEncoding, parsePoisonMessage } from './codec.js';
import type { QueueMessages } from './messages.js';
import { POISON_SUFFIX } from './names.js';
import { MAX_RECEIVE } from './options.js';

/** How long a message received only to page past it stays hidden (it is made visible again at once). */
const PAGE_VISIBILITY_S = 60;

export class DeadLetters {
  constructor(
    private readonly clients: QueueClients,
    private readonly messages: QueueMessages,
    private readonly encoding: MessageEncoding,
  ) {}

  /** Peeks at the poison queues of `queues` (Storage peeks at most 32 messages of a queue). */
  async list(kind: QueueKind, queues: readonly string[], limit: number): Promise<DeadLetter[]> {
    const max = Math.max(1, Math.min(MAX_RECEIVE, limit));
    const out: DeadLetter[] = [];
    for (const queue of queues) {
      if (out.length >= max) break;
      const poisonQueue = `${queue}${POISON_SUFFIX}`;
      const response = await this.clients.run('peekMessages', poisonQueue, (c) =>
        c.peekMessages({ numberOfMessages: max - out.length }),
      );
      for (const item of response.peekedMessageItems) {
        out.push(this.toDeadLetter(kind, item.messageId, item.messageText, item.insertedOn));
      }
    }
    return out;
  }

  /** Moves dead letters (all, or those with `ids`) back to their queue; returns how many. */
  async replay(
    queues: readonly string[],
    options: { limit?: number; ids?: string[] },
  ): Promise<number> {
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const wanted = options.ids ? new Set(options.ids) : undefined;
    let replayed = 0;
    for (const queue of queues) {
      const poisonQueue = `${queue}${POISON_SUFFIX}`;
      const skipped: { id: string; popReceipt: string }[] = [];
      try {
        while (replayed < limit) {
          const asked = Number.isFinite(limit) ? limit - replayed : MAX_RECEIVE;
          const response = await this.clients.run('getMessages', poisonQueue, (c) =>
            c.receiveMessages({
              numberOfMessages: Math.min(MAX_RECEIVE, asked),
              visibilityTimeout: PAGE_VISIBILITY_S,
            }),
          );
          const items = response.receivedMessageItems;
          if (items.length === 0) break;
          for (const item of items) {
            if ((wanted && !wanted.has(item.messageId)) || replayed >= limit) {
              skipped.push({ id: item.messageId, popReceipt: item.popReceipt });
              continue;
            }
            const { body, raw } = decodeText(item.messageText, this.encoding);
            const parsed = raw ? { body: item.messageText } : parsePoisonMessage(body);
            // A message kept verbatim because it was undecodable goes back verbatim.
            const text = parsed.header?.raw
              ? parsed.body
              : raw
                ? item.messageText
                : encodeBody(parsed.body, this.encoding);
            await this.messages.sendText(queue, text, 0);
            await this.messages.deleteQuietly(poisonQueue, item.messageId, item.popReceipt);
            replayed++;
          }
        }
      } finally {
        // Make skipped messages visible again at once (they were hidden only to page past them).
        await Promise.allSettled(
          skipped.map((s) =>
            this.clients.run('updateMessage', poisonQueue, (c) =>
              c.updateMessage(s.id, s.popReceipt, undefined, 0),
            ),
          ),
        );
      }
    }
    return replayed;
  }

  private toDeadLetter(kind: QueueKind, id: string, text: string, insertedOn: Date): DeadLetter {
    const decoded = decodeText(text, this.encoding);
    const parsed = decoded.raw ? { body: text } : parsePoisonMessage(decoded.body);
    if (!parsed.header) {
      // Put there by someone else, typically the Functions host after maxDequeueCount.
      return {
        queue: kind,
        id,
        body: parsed.body,
        reason: 'MaxDequeueCountExceeded',
        deadLetteredAt: insertedOn,
      };
    }
    const h = parsed.header;
    return {
      queue: kind,
      id,
      body: parsed.body,
      reason: h.reason,
      ...(h.description === undefined ? {} : { description: h.description }),
      deadLetteredAt: new Date(h.deadLetteredAt),
    };
  }
}
