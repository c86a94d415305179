import { SwitchyardError, ValidationError } from '../errors.js';
import { LaneSchedule, type Priority, priorityIssue } from '../priority.js';
import type {
  DeadLetter,
  OutgoingMessage,
  QueueKind,
  ReceivedMessage,
  ReceiveOptions,
  ReplayOptions,
  Settlement,
  Transport,
  TransportLimits,
  TransportUsage,
} from '../transport.js';
import { UsageCounter } from '../usage.js';
import { MinHeap } from '../util/heap.js';
import { Turns } from '../util/turns.js';

export interface MemoryTransportOptions {
  /** Path name. @defaultValue 'memory' */
  name?: string;
  /** Visibility timeout when `receive` does not give one. @defaultValue 30000 */
  visibilityTimeoutMs?: number;
  /** Limits reported to the batching policy. */
  limits?: Partial<TransportLimits>;
  /**
   * Jobs take turns within each priority lane (messages' `fairnessKey`); false: each lane is first
   * in, first out. @defaultValue true
   */
  fairness?: boolean;
}

/** Dead letters handed to a replay's `accept` at a time. */
const REPLAY_BATCH = 100;

interface StoredMessage {
  seq: number;
  body: string;
  messageId?: string;
  deliveryCount: number;
  enqueuedAt: Date;
  /** Its lane, for the message's whole life: retries, lock expiries and replays keep it. */
  priority: Priority;
  /** Whose turn it takes in its lane ('' when the sender named none); kept like the lane. */
  fairnessKey: string;
  /** Current delivery's lock token; 0 when not locked. Settling with another token is a no-op. */
  lockToken: number;
  /** When the message (or its current lock) next becomes visible. */
  visibleAt: number;
}

class MemoryReceivedMessage implements ReceivedMessage {
  constructor(
    readonly queue: QueueKind,
    readonly id: string,
    readonly body: string,
    readonly deliveryCount: number,
    readonly enqueuedAt: Date,
    readonly priority: Priority,
    /** @internal */ readonly stored: StoredMessage,
    /** @internal */ readonly lockToken: number,
  ) {}
}

class MemoryQueue {
  /** Visible messages, one lane per priority, each serving its keys in turn. */
  readonly lanes: Record<Priority, Turns<StoredMessage>> = {
    high: new Turns(),
    normal: new Turns(),
    low: new Turns(),
  };
  readonly schedule = new LaneSchedule();
  /** Delayed and locked messages by the time they become visible. */
  readonly waiting = new MinHeap<{ message: StoredMessage; token: number }>();
  readonly deadLetters: (DeadLetter & { stored: StoredMessage })[] = [];
  private readonly waiters = new Set<() => void>();

  wake(): void {
    for (const waiter of this.waiters) waiter();
    this.waiters.clear();
  }

  /** Resolves when a message may be ready, after `ms`, or on abort. */
  waitForMessages(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const nextKey = this.waiting.peekKey();
      const delay = nextKey === undefined ? ms : Math.min(ms, Math.max(0, nextKey - Date.now()));
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, delay);
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Moves delayed messages and expired locks whose time has come to the ready queue. */
  promote(now: number): void {
    for (
      let key = this.waiting.peekKey();
      key !== undefined && key <= now;
      key = this.waiting.peekKey()
    ) {
      const { message, token } = this.waiting.pop()!;
      // A stale entry: the message was settled, re-locked or extended since.
      if (message.lockToken !== token || message.visibleAt > now) continue;
      message.lockToken = 0;
      this.lanes[message.priority].push(message.fairnessKey, message);
    }
  }

  readyCount(): number {
    return this.lanes.high.length + this.lanes.normal.length + this.lanes.low.length;
  }

  /** The next visible message, reading the lanes in `order`. */
  take(order: readonly Priority[]): StoredMessage | undefined {
    for (const lane of order) {
      const message = this.lanes[lane].shift();
      if (message) return message;
    }
    return undefined;
  }
}

const DEFAULT_LIMITS: TransportLimits = {
  maxMessageBytes: 256 * 1024,
  maxBatchMessages: 1000,
  maxBatchBytes: 4 * 1024 * 1024,
  sendConcurrency: 4,
  maxReceiveMessages: 1000,
};

/**
 * An in-process transport with the semantics of a real queue: at-least-once delivery, visibility
 * timeouts, delivery counts, delayed delivery and a dead-letter queue — so the engine's tests see
 * redelivery exactly as on Azure. Within each priority lane, jobs take turns (`fairness`): a small
 * job's message is received next, not after a big job's queued thousands. Share one instance
 * between several Switchyards to simulate several workers.
 */
export function memoryTransport(options: MemoryTransportOptions = {}): Transport {
  return new MemoryTransport(options);
}

class MemoryTransport implements Transport {
  readonly name: string;
  readonly limits: TransportLimits;
  readonly priorities = true;
  readonly fairness: boolean;
  private readonly queues: Record<QueueKind, MemoryQueue> = {
    stage: new MemoryQueue(),
    task: new MemoryQueue(),
  };
  private readonly visibilityTimeoutMs: number;
  private seq = 0;
  private tokens = 0;
  private closed = false;
  private readonly counter = new UsageCounter();

  constructor(options: MemoryTransportOptions) {
    this.name = options.name ?? 'memory';
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.visibilityTimeoutMs = options.visibilityTimeoutMs ?? 30_000;
    this.fairness = options.fairness ?? true;
  }

  async send(queue: QueueKind, messages: readonly OutgoingMessage[]): Promise<void> {
    this.assertOpen();
    if (messages.length > this.limits.maxBatchMessages) {
      throw new SwitchyardError(
        'INVALID_INPUT',
        `batch of ${messages.length} messages exceeds maxBatchMessages ${this.limits.maxBatchMessages}`,
      );
    }
    for (const [i, m] of messages.entries()) {
      const bad = priorityIssue(m, i);
      if (bad) throw new ValidationError(`${bad.path} ${bad.message}`, [bad]);
      // Byte length is only worth computing when the string could be over the limit.
      if (
        m.body.length * 3 > this.limits.maxMessageBytes &&
        Buffer.byteLength(m.body) > this.limits.maxMessageBytes
      ) {
        throw new SwitchyardError(
          'INVALID_INPUT',
          `message of ${Buffer.byteLength(m.body)} bytes exceeds maxMessageBytes ${this.limits.maxMessageBytes}`,
        );
      }
    }
    const q = this.queues[queue];
    const now = Date.now();
    this.counter.add('send', messages.length);
    for (const m of messages) {
      const stored: StoredMessage = {
        seq: ++this.seq,
        body: m.body,
        deliveryCount: 0,
        enqueuedAt: new Date(now + (m.delayMs ?? 0)),
        lockToken: 0,
        visibleAt: now,
        priority: m.priority ?? 'normal',
        fairnessKey: this.fairness ? (m.fairnessKey ?? '') : '',
        ...(m.messageId === undefined ? {} : { messageId: m.messageId }),
      };
      if (m.delayMs && m.delayMs > 0) {
        stored.visibleAt = now + m.delayMs;
        stored.lockToken = ++this.tokens;
        q.waiting.push(stored.visibleAt, { message: stored, token: stored.lockToken });
      } else {
        q.lanes[stored.priority].push(stored.fairnessKey, stored);
      }
    }
    q.wake();
  }

  async receive(queue: QueueKind, options: ReceiveOptions): Promise<ReceivedMessage[]> {
    this.assertOpen();
    const q = this.queues[queue];
    const max = Math.max(1, Math.min(options.maxMessages, this.limits.maxReceiveMessages));
    const lockMs = options.visibilityTimeoutMs ?? this.visibilityTimeoutMs;
    const deadline = Date.now() + (options.waitMs ?? 0);
    for (;;) {
      const now = Date.now();
      q.promote(now);
      if (q.readyCount() > 0 || now >= deadline || options.abortSignal?.aborted || this.closed)
        break;
      await q.waitForMessages(deadline - now, options.abortSignal);
    }
    const out: ReceivedMessage[] = [];
    const now = Date.now();
    const order = q.schedule.next();
    while (out.length < max) {
      const message = q.take(order);
      if (!message) break;
      message.deliveryCount++;
      message.lockToken = ++this.tokens;
      message.visibleAt = now + lockMs;
      q.waiting.push(message.visibleAt, { message, token: message.lockToken });
      out.push(
        new MemoryReceivedMessage(
          queue,
          message.messageId ?? String(message.seq),
          message.body,
          message.deliveryCount,
          message.enqueuedAt,
          message.priority,
          message,
          message.lockToken,
        ),
      );
    }
    this.counter.add('receive', out.length);
    return out;
  }

  /** Messages sent, received and settled and locks extended, as a queue service would bill them. */
  usage(): TransportUsage {
    return this.counter.usage();
  }

  async settle(settlements: readonly Settlement[]): Promise<void> {
    const now = Date.now();
    const woken = new Set<MemoryQueue>();
    for (const s of settlements) {
      const received = s.message;
      if (!(received instanceof MemoryReceivedMessage))
        throw new SwitchyardError('INVALID_INPUT', 'message was not received from this transport');
      const stored = received.stored;
      this.counter.add('settle');
      if (stored.lockToken !== received.lockToken) continue; // lock lost: the message is back already
      const q = this.queues[received.queue];
      if (s.action === 'complete') {
        stored.lockToken = 0;
        stored.visibleAt = Number.POSITIVE_INFINITY;
      } else if (s.action === 'retry') {
        stored.lockToken = ++this.tokens;
        stored.visibleAt = now + Math.max(0, s.delayMs);
        q.waiting.push(stored.visibleAt, { message: stored, token: stored.lockToken });
        woken.add(q);
      } else {
        stored.lockToken = 0;
        stored.visibleAt = Number.POSITIVE_INFINITY;
        q.deadLetters.push({
          queue: received.queue,
          id: received.id,
          body: stored.body,
          reason: s.reason,
          deadLetteredAt: new Date(now),
          stored,
          ...(s.description === undefined ? {} : { description: s.description }),
        });
      }
    }
    for (const q of woken) q.wake();
  }

  async extendLock(message: ReceivedMessage, ms: number): Promise<void> {
    if (!(message instanceof MemoryReceivedMessage)) return;
    this.counter.add('extendLock');
    const stored = message.stored;
    if (stored.lockToken !== message.lockToken) return;
    stored.visibleAt = Date.now() + ms;
    this.queues[message.queue].waiting.push(stored.visibleAt, {
      message: stored,
      token: stored.lockToken,
    });
  }

  async listDeadLetters(queue: QueueKind, options: { limit?: number } = {}): Promise<DeadLetter[]> {
    return this.queues[queue].deadLetters
      .slice(0, options.limit ?? 100)
      .map(({ stored: _stored, ...dl }) => dl);
  }

  async replayDeadLetters(queue: QueueKind, options: ReplayOptions = {}): Promise<number> {
    const q = this.queues[queue];
    const wanted = options.ids ? new Set(options.ids) : undefined;
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    // The pass works on the dead letters there now; letters dead-lettered meanwhile stay.
    const snapshot = q.deadLetters.filter((dl) => !wanted || wanted.has(dl.id));
    let replayed = 0;
    for (let i = 0; i < snapshot.length && replayed < limit; i += REPLAY_BATCH) {
      const batch = snapshot.slice(i, i + Math.min(REPLAY_BATCH, limit - replayed));
      const verdicts = options.accept
        ? await options.accept(batch.map(({ stored: _stored, ...dl }) => dl))
        : batch.map(() => true);
      for (const [n, dl] of batch.entries()) {
        const at = q.deadLetters.indexOf(dl);
        // Gone already: another pass moved it.
        if (!verdicts[n] || at < 0) continue;
        q.deadLetters.splice(at, 1);
        dl.stored.deliveryCount = 0;
        dl.stored.visibleAt = Date.now();
        q.lanes[dl.stored.priority].push(dl.stored.fairnessKey, dl.stored);
        replayed++;
      }
      q.wake();
    }
    return replayed;
  }

  /** Messages waiting or in flight per queue (tests use it to prove nothing is left behind). */
  depth(queue: QueueKind): number {
    const q = this.queues[queue];
    return q.readyCount() + q.waiting.size;
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queues.stage.wake();
    this.queues.task.wake();
  }

  private assertOpen(): void {
    if (this.closed) throw new SwitchyardError('CLOSED', 'memory transport is closed');
  }
}
