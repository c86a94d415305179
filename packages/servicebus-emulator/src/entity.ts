/**
 * One queue (or its dead-letter subqueue): message states, locks, schedules, and the consumers
 * (client receiving links) messages are pushed to against their credit.
 * @module
 */
import { randomUUID } from 'node:crypto';
import {
  type AmqpMessage,
  dotnetGuidBytes,
  encodeMessage,
  newLockToken,
  type OutgoingDelivery,
  type SenderLink,
  types,
} from './amqp.js';
import { Deque, MinHeap } from './collections.js';

export type MessageState = 'active' | 'scheduled' | 'locked' | 'deferred' | 'removed';

export interface StoredMessage {
  /** Sequence number, unique per queue (kept when a message moves to the dead-letter queue). */
  readonly seq: number;
  message: AmqpMessage;
  enqueuedAt: number;
  /** Failed delivery attempts so far: the AMQP header `delivery-count` the SDK reports. */
  attempts: number;
  state: MessageState;
  /** Deferred messages stay deferred after their lock lapses or they are abandoned. */
  deferred: boolean;
  scheduledAt: number;
  lockToken: string | undefined;
  lockedUntil: number;
}

/** A client receiving link attached to this entity. */
export interface Consumer {
  readonly sender: SenderLink;
  readonly entity: Entity;
  readonly receiveAndDelete: boolean;
  /** Deliveries handed to rhea on this link (rhea counts only transferred ones against credit). */
  issued: number;
}

/** Links an outgoing rhea delivery to the message and lock it carried. */
export interface DeliveryRecord {
  readonly message: StoredMessage;
  readonly token: string;
  readonly entity: Entity;
}

export interface EntitySettings {
  lockDurationMs: number;
  maxDeliveryCount: number;
}

export type SettleResult = 'ok' | 'lock-lost';

/** What an entity asks before each delivery when the namespace's throughput is limited. */
export interface DeliveryGate {
  /** Spends the delivery's credit; false when the namespace has none now. */
  tryDeliver(now: number): boolean;
  /** Milliseconds until deliveries may be admitted again. */
  waitMs(now: number): number;
}

export const deliveries = new WeakMap<OutgoingDelivery, DeliveryRecord>();

export class Entity {
  readonly bySeq = new Map<number, StoredMessage>();
  readonly ready = new Deque<StoredMessage>();
  readonly locks = new Map<string, StoredMessage>();
  readonly consumers: Consumer[] = [];
  private readonly lockExpiries = new Deque<{
    until: number;
    message: StoredMessage;
    token: string;
  }>();
  private readonly schedule = new MinHeap<StoredMessage>();
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Number.POSITIVE_INFINITY;
  private rr = 0;
  private closed = false;
  private gateTimer: NodeJS.Timeout | undefined;
  /** Admits each delivery against the namespace's throughput (tier profiles); absent: no limit. */
  gate: DeliveryGate | undefined;

  constructor(
    readonly name: string,
    private readonly settings: () => EntitySettings,
    private readonly nextSeq: () => number,
    /** The dead-letter subqueue; absent on the dead-letter queue itself. */
    readonly deadLetter: Entity | undefined,
  ) {}

  /** Enqueues a message sent by a client (or scheduled over $management). */
  enqueue(message: AmqpMessage, now: number, seq = this.nextSeq()): StoredMessage {
    // Service Bus gives every message an id; the SDK's lock renewer needs one.
    if (message.message_id === undefined || message.message_id === null) {
      message.message_id = randomUUID().replaceAll('-', '');
    }
    const scheduledAt = scheduledTime(message);
    const stored: StoredMessage = {
      seq,
      message,
      enqueuedAt: now,
      attempts: 0,
      state: 'active',
      deferred: false,
      scheduledAt: 0,
      lockToken: undefined,
      lockedUntil: 0,
    };
    this.bySeq.set(seq, stored);
    if (scheduledAt !== undefined && scheduledAt > now) {
      stored.state = 'scheduled';
      stored.scheduledAt = scheduledAt;
      this.schedule.push(scheduledAt, stored);
      this.arm();
    } else {
      this.ready.push(stored);
    }
    return stored;
  }

  /** Cancels a scheduled message; false when it is not (or no longer) scheduled. */
  cancelScheduled(seq: number): boolean {
    const m = this.bySeq.get(seq);
    if (m?.state !== 'scheduled') return false;
    this.remove(m);
    return true;
  }

  // --- consumers and delivery -------------------------------------------------------------

  addConsumer(consumer: Consumer): void {
    this.consumers.push(consumer);
  }

  removeConsumer(sender: SenderLink): void {
    const i = this.consumers.findIndex((c) => c.sender === sender);
    if (i >= 0) this.consumers.splice(i, 1);
  }

  /** Credit the client granted that no delivery has used yet. */
  static available(c: Consumer): number {
    const link = c.sender;
    // credit + delivery_count is the credit limit in delivery-count terms; a drain advances
    // delivery_count past what we issued, so take the larger of the two.
    const limit = link.credit + link.delivery_count;
    if (link.delivery_count > c.issued) c.issued = link.delivery_count;
    return limit - c.issued;
  }

  /** Pushes ready messages to consumers with credit, round robin. */
  pump(now = Date.now()): void {
    const n = this.consumers.length;
    if (n === 0 || this.ready.length === 0) return;
    let idle = 0;
    while (this.ready.length > 0 && idle < n) {
      const c = this.consumers[this.rr % n]!;
      this.rr = (this.rr + 1) % n;
      if (
        !c.sender.is_open() ||
        Entity.available(c) <= 0 ||
        c.sender.session.outgoing.available() <= 0
      ) {
        idle++;
        continue;
      }
      idle = 0;
      if (this.gate && this.ready.peek()?.state === 'active' && !this.gate.tryDeliver(now)) {
        this.repumpAfter(this.gate.waitMs(now));
        return;
      }
      const m = this.ready.shift()!;
      if (m.state !== 'active') continue;
      this.deliver(c, m, now);
    }
  }

  /** Pumps again once the gate admits deliveries (one timer at a time). */
  private repumpAfter(ms: number): void {
    if (this.gateTimer || this.closed) return;
    this.gateTimer = setTimeout(() => {
      this.gateTimer = undefined;
      this.pump();
    }, ms);
  }

  private deliver(c: Consumer, m: StoredMessage, now: number): void {
    c.issued++;
    if (c.receiveAndDelete) {
      const tag = newLockToken().bytes;
      c.sender.send(this.encodeForDelivery(m, undefined), tag, 0);
      this.remove(m);
      return;
    }
    const { token, bytes } = newLockToken();
    this.lock(m, token, now);
    const delivery = c.sender.send(
      this.encodeForDelivery(m, m.lockedUntil),
      dotnetGuidBytes(bytes),
      0,
    );
    deliveries.set(delivery, { message: m, token, entity: this });
  }

  /** Locks a message for a receiver (link delivery or receive-by-sequence-number). */
  lock(m: StoredMessage, token: string, now: number): void {
    m.state = 'locked';
    m.lockToken = token;
    m.lockedUntil = now + this.settings().lockDurationMs;
    this.locks.set(token, m);
    this.lockExpiries.push({ until: m.lockedUntil, message: m, token });
    this.arm();
  }

  /** The message as a receiver sees it: broker annotations and the header delivery count added. */
  encodeForDelivery(m: StoredMessage, lockedUntil: number | undefined): Buffer {
    const annotations: Record<string, unknown> = {
      ...m.message.message_annotations,
      'x-opt-sequence-number': types.wrap_long(m.seq),
      'x-opt-enqueued-time': types.wrap_timestamp(m.enqueuedAt),
    };
    if (lockedUntil !== undefined)
      annotations['x-opt-locked-until'] = types.wrap_timestamp(lockedUntil);
    if (m.state === 'scheduled') annotations['x-opt-message-state'] = types.wrap_int(2);
    else if (m.deferred) annotations['x-opt-message-state'] = types.wrap_int(1);
    return encodeMessage({
      ...m.message,
      delivery_count: m.attempts,
      message_annotations: annotations,
    });
  }

  // --- settlement ---------------------------------------------------------------------------

  /** Finds the locked message a lock token refers to, if the lock is still held. */
  locked(token: string, now = Date.now()): StoredMessage | undefined {
    const m = this.locks.get(token);
    if (m?.state !== 'locked' || m.lockToken !== token || m.lockedUntil <= now) return undefined;
    return m;
  }

  renewLock(token: string, now = Date.now()): number | undefined {
    const m = this.locked(token, now);
    if (!m) return undefined;
    m.lockedUntil = now + this.settings().lockDurationMs;
    // A renewed expiry is later than every expiry already queued, so the deque stays ordered.
    this.lockExpiries.push({ until: m.lockedUntil, message: m, token });
    this.arm();
    return m.lockedUntil;
  }

  complete(token: string): SettleResult {
    const m = this.locked(token);
    if (!m) return 'lock-lost';
    this.remove(m);
    return 'ok';
  }

  abandon(token: string, annotations?: Record<string, unknown>): SettleResult {
    const m = this.locked(token);
    if (!m) return 'lock-lost';
    this.unlock(m);
    mergeAnnotations(m, annotations);
    this.retry(m);
    this.pump();
    return 'ok';
  }

  defer(token: string, annotations?: Record<string, unknown>): SettleResult {
    const m = this.locked(token);
    if (!m) return 'lock-lost';
    this.unlock(m);
    mergeAnnotations(m, annotations);
    m.deferred = true;
    m.state = 'deferred';
    return 'ok';
  }

  deadLetterLocked(
    token: string,
    reason: unknown,
    description: unknown,
    properties?: Record<string, unknown>,
  ): SettleResult {
    const m = this.locked(token);
    if (!m) return 'lock-lost';
    this.unlock(m);
    this.moveToDeadLetter(m, reason, description, properties);
    return 'ok';
  }

  /** Deferred messages by sequence number, for `receive-by-sequence-number`. */
  deferredBySeq(seq: number): StoredMessage | undefined {
    const m = this.bySeq.get(seq);
    return m?.deferred && m.state === 'deferred' ? m : undefined;
  }

  remove(m: StoredMessage): void {
    if (m.lockToken !== undefined) this.locks.delete(m.lockToken);
    m.lockToken = undefined;
    m.state = 'removed';
    this.bySeq.delete(m.seq);
  }

  private unlock(m: StoredMessage): void {
    if (m.lockToken !== undefined) this.locks.delete(m.lockToken);
    m.lockToken = undefined;
  }

  /** A failed attempt (abandon or lock expiry): count it, then redeliver or dead-letter. */
  private retry(m: StoredMessage): void {
    m.attempts++;
    const max = this.settings().maxDeliveryCount;
    if (this.deadLetter && m.attempts >= max) {
      this.moveToDeadLetter(
        m,
        'MaxDeliveryCountExceeded',
        `Message could not be consumed after ${max} delivery attempts.`,
      );
      return;
    }
    if (m.deferred) {
      m.state = 'deferred';
      return;
    }
    m.state = 'active';
    // Back at the head: an abandoned message is next in line, as on Service Bus.
    this.ready.unshift(m);
  }

  private moveToDeadLetter(
    m: StoredMessage,
    reason: unknown,
    description: unknown,
    properties?: Record<string, unknown>,
  ): void {
    this.remove(m);
    const dlq = this.deadLetter;
    if (!dlq) return; // dead-lettering from the dead-letter queue drops nothing on SB; keep it simple
    const app: Record<string, unknown> = { ...m.message.application_properties, ...properties };
    if (reason !== undefined && reason !== null) app.DeadLetterReason = reason;
    if (description !== undefined && description !== null)
      app.DeadLetterErrorDescription = description;
    const moved = dlq.enqueue({ ...m.message, application_properties: app }, Date.now(), m.seq);
    moved.enqueuedAt = m.enqueuedAt;
    moved.attempts = m.attempts;
    dlq.pump();
  }

  // --- timers ------------------------------------------------------------------------------

  /** One timer per entity, armed for the earliest lock expiry or scheduled time. */
  private arm(): void {
    if (this.closed) return;
    const next = Math.min(
      this.lockExpiries.peek()?.until ?? Number.POSITIVE_INFINITY,
      this.schedule.peekKey() ?? Number.POSITIVE_INFINITY,
    );
    if (next === Number.POSITIVE_INFINITY || next >= this.timerDue) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = next;
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, next - Date.now()));
    this.timer.unref();
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerDue = Number.POSITIVE_INFINITY;
    const now = Date.now();
    for (let e = this.lockExpiries.peek(); e && e.until <= now; e = this.lockExpiries.peek()) {
      this.lockExpiries.shift();
      const m = e.message;
      if (m.state === 'locked' && m.lockToken === e.token && m.lockedUntil <= now) {
        this.unlock(m);
        this.retry(m);
      }
    }
    for (
      let t = this.schedule.peekKey();
      t !== undefined && t <= now;
      t = this.schedule.peekKey()
    ) {
      const m = this.schedule.pop()!;
      if (m.state !== 'scheduled') continue;
      m.state = 'active';
      m.enqueuedAt = m.scheduledAt;
      this.ready.push(m);
    }
    this.arm();
    this.pump(now);
  }

  stats(): { active: number; scheduled: number; locked: number; deferred: number } {
    const s = { active: 0, scheduled: 0, locked: 0, deferred: 0 };
    for (const m of this.bySeq.values()) {
      if (m.state === 'active') s.active++;
      else if (m.state === 'scheduled') s.scheduled++;
      else if (m.state === 'locked') s.locked++;
      else if (m.state === 'deferred') s.deferred++;
    }
    return s;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.gateTimer) clearTimeout(this.gateTimer);
    this.gateTimer = undefined;
  }
}

function scheduledTime(message: AmqpMessage): number | undefined {
  const v = message.message_annotations?.['x-opt-scheduled-enqueue-time'];
  if (v instanceof Date) return v.getTime();
  return typeof v === 'number' ? v : undefined;
}

function mergeAnnotations(m: StoredMessage, annotations?: Record<string, unknown>): void {
  if (!annotations || Object.keys(annotations).length === 0) return;
  m.message = {
    ...m.message,
    message_annotations: { ...m.message.message_annotations, ...annotations },
  };
}
