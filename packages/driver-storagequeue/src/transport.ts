/**
 * `storageQueueTransport`: the core {@link Transport} on Azure Storage Queues
 * (`@azure/storage-queue`).
 * @module
 */

import { setMaxListeners } from 'node:events';
import {
  type FieldIssue,
  type Priority,
  type QueueKind,
  SwitchyardError,
  ValidationError,
} from '@switchyard/core';
import {
  type CostEstimate,
  type DeadLetter,
  LaneSchedule,
  type OutgoingMessage,
  priorityIssue,
  type ReceivedMessage,
  type ReceiveOptions,
  type ReplayOptions,
  type Settlement,
  type Transport,
  type TransportLimits,
  type TransportUsage,
  UsageCounter,
} from '@switchyard/core/driver';
import { AdaptiveLimit } from './adaptive-limit.js';
import { QueueClients } from './clients.js';
import { encodeBody } from './codec.js';
import { DeadLetters } from './dead-letters.js';
import { isAbortError } from './errors.js';
import { LaneClock } from './lanes.js';
import { type Handle, handleOf, inTurn, QueueMessages, seconds } from './messages.js';
import { type Lane, queuesOf } from './names.js';
import {
  MAX_RECEIVE,
  MAX_VISIBILITY_S,
  type ResolvedOptions,
  resolveOptions,
  type StorageQueueTransportOptions,
} from './options.js';
import { STORAGE_QUEUE_LIST_PRICES, type StorageQueuePrices, storageQueueCost } from './prices.js';
import { PutWake } from './put-wake.js';

/** The Storage Queues {@link Transport}, with its optional capabilities all present. */
export type StorageQueueTransport = Transport &
  Required<
    Pick<
      Transport,
      'listDeadLetters' | 'replayDeadLetters' | 'extendLock' | 'ping' | 'usage' | 'estimateCost'
    >
  >;

/** Poll backoff while idle: 50 ms doubling to 1 s. */
const POLL_MIN_MS = 50;
const POLL_MAX_MS = 1000;

/**
 * A {@link Transport} on Azure Storage Queues.
 *
 * - Bodies are base64-encoded by default, so Azure Functions storage-queue triggers read them.
 * - No batch send exists: `send` runs one `sendMessage` per message, at most `sendConcurrency`
 *   calls in flight, halved on `503 ServerBusy` and grown back as calls succeed.
 * - `deliveryCount` is the message's `dequeueCount`; a message dequeued more than `maxDequeueCount`
 *   times is moved to `<queue>-poison` (reason `MaxDequeueCountExceeded`) instead of returned.
 * - Dead-lettered messages go to `<queue>-poison` as `#switchyard-poison {header}\n<original body>`.
 * - With `priorityLanes`, task messages go to `<task>-high`, `<task>` or `<task>-low` by priority,
 *   and each receive reads those lanes in weighted order ({@link LaneSchedule}, 6:3:1).
 * - `usage()` counts Storage transactions (one per REST call) and the 503s met; `estimateCost`
 *   prices them at {@link STORAGE_QUEUE_LIST_PRICES} or `options.prices`.
 *
 * @throws ValidationError (code `INVALID_INPUT`) naming the field, for bad options or queue names.
 * @example
 * ```ts
 * const transport = storageQueueTransport({ connectionString: process.env.STORAGE_CONNECTION! });
 * ```
 */
export function storageQueueTransport(
  options: StorageQueueTransportOptions,
): StorageQueueTransport {
  return new StorageQueueTransportImpl(options);
}

class StorageQueueTransportImpl implements StorageQueueTransport {
  readonly name: string;
  readonly limits: TransportLimits;
  readonly priorities: boolean;
  private readonly config: ResolvedOptions;
  private readonly prices: StorageQueuePrices;
  private readonly counter = new UsageCounter();
  private readonly closeController = new AbortController();
  private readonly clients: QueueClients;
  private readonly messages: QueueMessages;
  private readonly deadLetters: DeadLetters;
  private closed = false;
  private shardCursor = 0;
  /** Each lane's next shard to receive from (a kind without lanes is one lane). */
  private readonly receiveShard = new Map<Lane, number>();
  /**
   * With lanes: the order each task receive reads them in, and when each is read again after an
   * empty read. Undefined without lanes.
   */
  private readonly lanes: { schedule: LaneSchedule; clock: LaneClock } | undefined;
  /** Per queue kind read without lanes: wakes its idle receive calls when this transport puts there. */
  private readonly wakes: Record<QueueKind, PutWake> = {
    stage: new PutWake(),
    task: new PutWake(),
  };
  private ensured: Promise<void> | undefined;

  constructor(options: StorageQueueTransportOptions) {
    this.config = resolveOptions(options);
    this.name = this.config.name;
    this.limits = this.config.limits;
    this.priorities = this.config.priorityLanes;
    this.lanes = this.priorities
      ? { schedule: new LaneSchedule(), clock: new LaneClock() }
      : undefined;
    this.prices = options.prices ?? STORAGE_QUEUE_LIST_PRICES;
    // Every call backing off and every receive waits on this signal: no listener bound applies.
    setMaxListeners(0, this.closeController.signal);
    // A stage message moves a job forward: its calls go before task calls waiting for a slot.
    const stageQueues = new Set(queuesOf(this.config.layout.stage));
    this.clients = new QueueClients({
      connection: this.config.connection,
      retryOptions: this.config.retryOptions,
      limit: new AdaptiveLimit({ max: this.config.sendConcurrency }),
      urgent: (queue) => stageQueues.has(queue),
      counter: this.counter,
      closed: this.closeController.signal,
    });
    this.messages = new QueueMessages(
      this.clients,
      this.config.encoding,
      this.config.maxDequeueCount,
    );
    this.deadLetters = new DeadLetters(this.clients, this.messages, this.config.encoding);
  }

  async send(
    kind: QueueKind,
    messages: readonly OutgoingMessage[],
    options: { abortSignal?: AbortSignal } = {},
  ): Promise<void> {
    this.assertOpen();
    this.checkOutgoing(messages);
    if (messages.length === 0) return;
    await this.ensureQueues();
    const lanes = this.config.layout[kind];
    const { encoding } = this.config;
    const results = await Promise.allSettled(
      messages.map((m) => {
        const lane = this.laneFor(lanes, m.priority);
        const queue = lane.queues[this.shardCursor++ % lane.queues.length]!;
        options.abortSignal?.throwIfAborted();
        const delayMs = m.delayMs ?? 0;
        const sent = this.messages.sendText(
          queue,
          encodeBody(m.body, encoding),
          delayMs,
          options.abortSignal,
        );
        return sent.then(() => this.woke(kind, lane.priority, delayMs));
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      if (options.abortSignal?.aborted) {
        throw new SwitchyardError('ABORTED', 'storagequeue send aborted');
      }
      throw failed.reason;
    }
  }

  /**
   * This transport put a message in `kind` (in `lane`, with lanes), visible after `delayMs`: wake
   * the receive calls waiting for that lane or queue (Storage rounds delays up to whole seconds).
   */
  private woke(kind: QueueKind, lane: Priority | undefined, delayMs: number): void {
    const visibleInMs = seconds(delayMs) * 1000;
    const clock = this.lanes?.clock;
    if (kind === 'task' && lane && clock) clock.put(lane, Date.now() + visibleInMs);
    else this.wakes[kind].put(visibleInMs);
  }

  /** The lane a message goes to: its priority's (absent: `normal`), or the kind's only lane. */
  private laneFor(lanes: readonly Lane[], priority: Priority | undefined): Lane {
    if (lanes.length === 1) return lanes[0]!;
    const wanted = priority ?? 'normal';
    return lanes.find((lane) => lane.priority === wanted)!;
  }

  /** Rejects over-limit bodies and delays before any I/O, naming each field. */
  private checkOutgoing(messages: readonly OutgoingMessage[]): void {
    const issues: FieldIssue[] = [];
    messages.forEach((m, i) => {
      const bytes = Buffer.byteLength(m.body, 'utf8');
      if (bytes > this.limits.maxMessageBytes) {
        issues.push({
          path: `messages[${i}].body`,
          message: `is ${bytes} bytes, over maxMessageBytes ${this.limits.maxMessageBytes}; send larger payloads through the store (the engine's claim check)`,
        });
      }
      if (m.delayMs !== undefined && !(m.delayMs >= 0 && m.delayMs <= MAX_VISIBILITY_S * 1000)) {
        issues.push({ path: `messages[${i}].delayMs`, message: 'must be from 0 to 7 days in ms' });
      }
      // Only a transport with lanes routes by priority; without lanes it is ignored, as before.
      const badPriority = this.priorities ? priorityIssue(m, i) : undefined;
      if (badPriority) issues.push(badPriority);
    });
    if (issues.length > 0) {
      throw new ValidationError(
        `storagequeue send rejected: ${issues[0]!.path} ${issues[0]!.message}`,
        issues,
      );
    }
  }

  async receive(kind: QueueKind, options: ReceiveOptions): Promise<ReceivedMessage[]> {
    this.assertOpen();
    const asked = Math.floor(options.maxMessages);
    const max = Number.isFinite(asked) ? Math.max(1, Math.min(MAX_RECEIVE, asked)) : MAX_RECEIVE;
    const visibilityS = Math.max(
      1,
      seconds(options.visibilityTimeoutMs ?? this.config.defaultVisibilityMs),
    );
    const deadline = Date.now() + Math.max(0, options.waitMs ?? 0);
    const signal = options.abortSignal
      ? AbortSignal.any([options.abortSignal, this.closeController.signal])
      : this.closeController.signal;
    await this.ensureQueues();
    if (kind === 'task' && this.lanes)
      return this.receiveLanes(this.lanes, { max, visibilityS, deadline, signal });
    let backoff = POLL_MIN_MS;
    for (;;) {
      if (signal.aborted) return [];
      try {
        const lane = this.config.layout[kind][0]!;
        const got = await this.receiveShards(kind, lane, { max, visibilityS, signal });
        if (got.length > 0) return got;
      } catch (err) {
        // An aborted poll returns nothing; whatever it dequeued reappears after the visibility timeout.
        if (signal.aborted || isAbortError(err)) return [];
        throw err;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) return [];
      const woken = await this.wakes[kind].sleep(Math.min(backoff, remaining), signal);
      backoff = woken ? POLL_MIN_MS : Math.min(backoff * 2, POLL_MAX_MS);
    }
  }

  /**
   * One pass over a lane's queues (its shards), starting at the lane's next shard round-robin;
   * each message reports the lane's priority, if it has one.
   */
  private async receiveShards(
    kind: QueueKind,
    lane: Lane,
    read: { max: number; visibilityS: number; signal: AbortSignal },
  ): Promise<ReceivedMessage[]> {
    const { queues } = lane;
    const cursor = this.receiveShard.get(lane) ?? 0;
    this.receiveShard.set(lane, cursor + 1);
    const start = cursor % queues.length;
    const got: ReceivedMessage[] = [];
    for (let i = 0; i < queues.length && got.length < read.max; i++) {
      const queue = queues[(start + i) % queues.length]!;
      got.push(
        ...(await this.messages.receiveFrom(
          kind,
          queue,
          read.max - got.length,
          read.visibilityS,
          read.signal,
          lane.priority,
        )),
      );
    }
    return got;
  }

  /**
   * A task receive over the priority lanes: passes that read the lanes in the schedule's next
   * order, filling `max`
   * from the first and the rest from the next ones, skipping a lane the {@link LaneClock} says is
   * quiet (it came back empty within its back-off and nothing was put there since). Between
   * passes it sleeps until a lane is due, a message is put in one, or the wait ends.
   */
  private async receiveLanes(
    { schedule, clock }: { schedule: LaneSchedule; clock: LaneClock },
    read: { max: number; visibilityS: number; deadline: number; signal: AbortSignal },
  ): Promise<ReceivedMessage[]> {
    const { max, visibilityS, deadline, signal } = read;
    const order = schedule.next();
    const lanes = this.config.layout.task;
    for (;;) {
      if (signal.aborted) return [];
      const got: ReceivedMessage[] = [];
      try {
        for (const priority of order) {
          if (got.length >= max) break;
          const startedAt = Date.now();
          if (!clock.isDue(priority, startedAt)) continue;
          const lane = lanes.find((l) => l.priority === priority)!;
          clock.startRead(priority, startedAt);
          let read: ReceivedMessage[] = [];
          try {
            read = await this.receiveShards('task', lane, {
              max: max - got.length,
              visibilityS,
              signal,
            });
          } finally {
            clock.endRead(priority, startedAt, read.length > 0, Date.now());
          }
          got.push(...read);
        }
      } catch (err) {
        // An aborted poll returns nothing, as on a queue without lanes: whatever it dequeued
        // (from earlier lanes too) reappears after the visibility timeout.
        if (signal.aborted || isAbortError(err)) return [];
        // A later lane failing does not hide what earlier lanes gave: those messages are dequeued
        // already and would otherwise wait out their visibility timeout. A lasting failure shows
        // when a later receive reads that lane again.
        if (got.length > 0) return got;
        throw err;
      }
      if (got.length > 0) return got;
      const now = Date.now();
      const remaining = deadline - now;
      if (remaining <= 0) return [];
      await clock.sleep(Math.min(clock.msUntilDue(now), remaining), signal);
    }
  }

  async settle(settlements: readonly Settlement[]): Promise<void> {
    this.assertOpen();
    const results = await Promise.allSettled(settlements.map((s) => this.settleOne(s)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async settleOne(s: Settlement): Promise<void> {
    const handle = handleOf(s.message);
    handle.settled = true;
    // After any operation on the message still under way: it may be about to replace the receipt.
    await inTurn(handle, () => this.apply(s, handle));
  }

  private async apply(s: Settlement, handle: Handle): Promise<void> {
    const { id } = s.message;
    switch (s.action) {
      case 'complete':
        return this.messages.deleteQuietly(handle.storageQueue, id, handle.popReceipt);
      case 'retry': {
        // Storage makes the message visible again in place: it stays in its lane.
        await this.messages.updateVisibility(handle, id, s.delayMs);
        return this.woke(s.message.queue, s.message.priority, s.delayMs);
      }
      case 'deadLetter': {
        const item = {
          id,
          popReceipt: handle.popReceipt,
          text: handle.text,
          raw: handle.raw,
          body: s.message.body,
          dequeueCount: s.message.deliveryCount,
        };
        return this.messages.poison(
          s.message.queue,
          handle.storageQueue,
          item,
          s.reason,
          s.description,
        );
      }
    }
  }

  /**
   * Keeps a message invisible for `ms` from now, in turn with its other operations. Not once its
   * settlement was asked for: run after the settlement, it would replace a retry's delay by `ms`.
   */
  async extendLock(message: ReceivedMessage, ms: number): Promise<void> {
    this.assertOpen();
    const handle = handleOf(message);
    await inTurn(handle, () =>
      handle.settled ? Promise.resolve() : this.messages.updateVisibility(handle, message.id, ms),
    );
  }

  /** Reads the task queue's (first shard's) properties, creating the queues first when `createQueues`. */
  async ping(): Promise<void> {
    this.assertOpen();
    await this.ensureQueues();
    const queue = this.laneFor(this.config.layout.task, 'normal').queues[0]!;
    await this.clients.run('getProperties', queue, (c) => c.getProperties());
  }

  async listDeadLetters(kind: QueueKind, options: { limit?: number } = {}): Promise<DeadLetter[]> {
    this.assertOpen();
    await this.ensureQueues();
    return this.deadLetters.list(
      kind,
      queuesOf(this.config.layout[kind]),
      options.limit ?? MAX_RECEIVE,
    );
  }

  /** Moves each dead letter back to the queue whose `-poison` queue holds it: its own lane and shard. */
  async replayDeadLetters(kind: QueueKind, options: ReplayOptions = {}): Promise<number> {
    this.assertOpen();
    await this.ensureQueues();
    let left = options.limit ?? Number.POSITIVE_INFINITY;
    let replayed = 0;
    for (const lane of this.config.layout[kind]) {
      if (left <= 0) break;
      const moved = await this.deadLetters.replay(kind, lane.queues, { ...options, limit: left });
      if (moved > 0) this.woke(kind, lane.priority, 0);
      replayed += moved;
      left -= moved;
    }
    return replayed;
  }

  /** Storage transactions by REST operation since creation, and the `503 ServerBusy` answers met. */
  usage(): TransportUsage {
    return this.counter.usage();
  }

  /** The cost of `usage` at this transport's price table. */
  estimateCost(usage: TransportUsage): CostEstimate {
    return storageQueueCost(usage, this.prices);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closeController.abort();
    this.wakes.stage.close();
    this.wakes.task.close();
  }

  private ensureQueues(): Promise<void> {
    if (!this.config.createQueues) return Promise.resolve();
    this.ensured ??= Promise.all(
      this.config.allQueues.map((q) =>
        this.clients.run('createQueue', q, (c) => c.createIfNotExists()),
      ),
    ).then(
      () => undefined,
      (err: unknown) => {
        this.ensured = undefined; // try again next time
        throw err;
      },
    );
    return this.ensured;
  }

  private assertOpen(): void {
    if (this.closed)
      throw new SwitchyardError('CLOSED', 'storageQueueTransport used after close()');
  }
}
