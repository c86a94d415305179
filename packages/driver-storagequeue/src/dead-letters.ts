/**
 * Listing and replaying the poison queues (`<queue>-poison`), which hold this transport's dead
 * letters (`#switchyard-poison {header}\n<body>`) and those the Functions host moved there.
 * @module
 */

import type { QueueKind } from '@switchyard/core';
import type { DeadLetter, ReplayOptions } from '@switchyard/core/driver';
import type { QueueClients } from './clients.js';
import { decodeText, encodeBody, type MessageEncoding, parsePoisonMessage } from './codec.js';
import type { QueueMessages } from './messages.js';
import { POISON_SUFFIX } from './names.js';
import { MAX_RECEIVE } from './options.js';

/** Seconds a replay pass hides the poison messages it pages past (made visible again at its end). */
const REPLAY_HIDE_S = 300;

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

  /** Moves dead letters back to their queues in one terminating pass; returns how many. */
  async replay(
    kind: QueueKind,
    queues: readonly string[],
    options: ReplayOptions,
  ): Promise<number> {
    let left = options.limit ?? Number.POSITIVE_INFINITY;
    let replayed = 0;
    for (const queue of queues) {
      if (left <= 0) break;
      const moved = await this.replayQueue(kind, queue, left, options);
      replayed += moved;
      left -= moved;
    }
    return replayed;
  }

  /**
   * One replay pass over `<queue>-poison`. The pass moves the poison messages there when it
   * starts: one inserted later (by the server's clock, to the second), or the poison copy of a
   * message this pass sent, is dead-lettered during the pass and stays. Messages not moved are
   * hidden while the pass pages past them, and made visible again at its end.
   */
  private async replayQueue(
    kind: QueueKind,
    queue: string,
    limit: number,
    options: ReplayOptions,
  ): Promise<number> {
    const poisonQueue = `${queue}${POISON_SUFFIX}`;
    const wanted = options.ids ? new Set(options.ids) : undefined;
    const hidden = new Map<string, string>();
    const decided = new Set<string>();
    const sent = new Set<string>();
    let startedAt: Date | undefined;
    let replayed = 0;
    try {
      while (replayed < limit) {
        const response = await this.clients.run('getMessages', poisonQueue, (c) =>
          c.receiveMessages({ numberOfMessages: MAX_RECEIVE, visibilityTimeout: REPLAY_HIDE_S }),
        );
        startedAt ??= response.date ?? new Date();
        const items = response.receivedMessageItems;
        if (items.length === 0) break;
        const offered: { item: (typeof items)[number]; letter: DeadLetter; text: string }[] = [];
        for (const item of items) {
          const { body, raw } = decodeText(item.messageText, this.encoding);
          const parsed = raw ? { body: item.messageText } : parsePoisonMessage(body);
          const newer =
            item.insertedOn > startedAt ||
            (parsed.header !== undefined && sent.has(parsed.header.messageId));
          if (
            newer ||
            decided.has(item.messageId) ||
            (wanted && !wanted.has(item.messageId)) ||
            offered.length >= limit - replayed
          ) {
            hidden.set(item.messageId, item.popReceipt);
            continue;
          }
          decided.add(item.messageId);
          // A message kept verbatim because it was undecodable goes back verbatim.
          const text = parsed.header?.raw
            ? parsed.body
            : raw
              ? item.messageText
              : encodeBody(parsed.body, this.encoding);
          offered.push({
            item,
            letter: this.toDeadLetter(kind, item.messageId, item.messageText, item.insertedOn),
            text,
          });
        }
        if (offered.length === 0) continue;
        const verdicts = options.accept
          ? await options.accept(offered.map((o) => o.letter))
          : offered.map(() => true);
        for (const [i, { item, text }] of offered.entries()) {
          if (verdicts[i] !== true) {
            hidden.set(item.messageId, item.popReceipt);
            continue;
          }
          sent.add(await this.messages.sendText(queue, text, 0));
          await this.messages.deleteQuietly(poisonQueue, item.messageId, item.popReceipt);
          hidden.delete(item.messageId);
          replayed++;
        }
      }
    } finally {
      // Make the messages not moved visible again at once.
      await Promise.allSettled(
        [...hidden].map(([id, popReceipt]) =>
          this.clients.run('updateMessage', poisonQueue, (c) =>
            c.updateMessage(id, popReceipt, undefined, 0),
          ),
        ),
      );
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
