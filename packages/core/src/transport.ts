/**
 * The transport seam: what the engine needs from a message queue. A driver is a factory returning
 * a {@link Transport}; it never leaks its vendor's types through this interface.
 *
 * Semantics every transport keeps (checked by `transportConformance` in `@switchyard/core/testing`):
 * - at-least-once: a received message that is not settled comes back after its visibility
 *   timeout / lock expires, with `deliveryCount` one higher;
 * - `settle` with `retry` makes the message invisible for `delayMs` and then delivers it again
 *   (a transport without native delay may re-send a copy and complete the original);
 * - `settle` with `deadLetter` moves the message to the transport's poison place with the reason;
 * - bodies are opaque strings of at most `limits.maxMessageBytes` UTF-8 bytes.
 * @module
 */

import type { Priority } from './priority.js';

/** The two queues every transport keeps: stage messages (fan out / finish a job) and task messages. */
export type QueueKind = 'stage' | 'task';

/** Size and throughput limits a transport reports, used by the batching policy. */
export interface TransportLimits {
  /** Largest message body, in UTF-8 bytes, the transport accepts (after its own encoding overhead). */
  maxMessageBytes: number;
  /** Most messages one `send` call may carry. */
  maxBatchMessages: number;
  /** Most body bytes one `send` call may carry. */
  maxBatchBytes: number;
  /** How many `send` calls of one fan-out may run at once. */
  sendConcurrency: number;
  /** Most messages one `receive` call returns. */
  maxReceiveMessages: number;
  /**
   * Tasks per task message this transport recommends for its tier (`batching.packTasks` when the
   * user sets none): packing divides its billed and throttled operations per task.
   */
  packTasks?: number;
  /**
   * Tasks per handler slot a worker may hold beyond its slots on this transport when `work()`
   * sets no `prefetch` (see `WorkOptions.prefetch`): recommended by a transport whose receive and
   * settlement statements cost far more than a short task. Absent: none.
   */
  prefetchPerSlot?: number;
  /**
   * Tasks of one stage that may wait in this transport's queue (`batching.window` when the user
   * sets none): recommended by a transport whose queue drains slowly, since a job behind waits
   * for the queued tasks ahead of it, and a queue kept short still never runs dry as long as it
   * holds more than the tasks its workers take while a release is on its way. Absent: the
   * engine's default.
   */
  window?: number;
}

/** A message to send. */
export interface OutgoingMessage {
  /** The envelope text. */
  body: string;
  /** A stable id (used for de-duplication where the transport supports it, and in diagnostics). */
  messageId?: string;
  /** Deliver no earlier than this many milliseconds from now. */
  delayMs?: number;
  /**
   * The W3C `traceparent` the envelope carries, for a transport that also has a tracing header of
   * its own (Service Bus sets its `Diagnostic-Id` application property from it).
   */
  traceparent?: string;
  /**
   * The lane of a task message: its job's priority. A transport that keeps lanes
   * ({@link Transport.priorities}) sends it to that lane and keeps it there through retries,
   * redeliveries and dead-letter replays; others ignore it. @defaultValue 'normal'
   */
  priority?: Priority;
  /**
   * Whose message it is, for a transport that serves keys in turn ({@link Transport.fairness}):
   * the engine sets its job's id, so a job's message queued behind thousands of another job's is
   * received next, not after them. Others ignore it.
   */
  fairnessKey?: string;
}

/** A delivered message, valid until settled or until its lock / visibility expires. */
export interface ReceivedMessage {
  /** The queue it came from. */
  readonly queue: QueueKind;
  /** Transport-assigned id of this message (stable across redeliveries where the transport allows). */
  readonly id: string;
  /** The body as sent. A transport that cannot decode the raw bytes passes them through as text. */
  readonly body: string;
  /** 1 on first delivery, incremented on every redelivery. */
  readonly deliveryCount: number;
  /** When the message was enqueued (or became visible, for delayed messages), if known. */
  readonly enqueuedAt?: Date;
  /** The lane it was received from, on a transport that keeps lanes. */
  readonly priority?: Priority;
}

/**
 * What to do with a delivered message: acknowledge it, make it visible again after `delayMs`, or
 * move it to the poison place. `handle()` returns one; a worker settles the message with it.
 */
export type SettlementAction =
  | { action: 'complete' }
  | { action: 'retry'; delayMs: number; reason?: string }
  | { action: 'deadLetter'; reason: string; description?: string };

/** A {@link SettlementAction} applied to one received message. */
export type Settlement = SettlementAction & { message: ReceivedMessage };

/** Options of one `receive` call. */
export interface ReceiveOptions {
  /** At most this many messages (capped by `limits.maxReceiveMessages`). */
  maxMessages: number;
  /** How long the received messages stay invisible to other receivers (where settable). */
  visibilityTimeoutMs?: number;
  /** Wait up to this long for a first message before returning an empty array. */
  waitMs?: number;
  abortSignal?: AbortSignal;
}

/** A dead-lettered message, as listed by {@link DeadLetterCapability.listDeadLetters}. */
export interface DeadLetter {
  queue: QueueKind;
  id: string;
  body: string;
  reason: string;
  description?: string;
  deadLetteredAt?: Date;
}

/** Options of {@link DeadLetterCapability.replayDeadLetters}. */
export interface ReplayOptions {
  /** Move at most this many. @defaultValue every dead letter there when the pass starts */
  limit?: number;
  /** Move only dead letters with these ids (as listed). */
  ids?: readonly string[];
  /**
   * Decides, batch by batch and before any of the batch moves, which dead letters go back: `true`
   * at a letter's position moves it, `false` keeps it dead-lettered. The engine passes one that
   * re-opens each replayed task first (so the replay re-runs it) and refuses what it cannot
   * re-open. @defaultValue every letter moves
   */
  accept?: (letters: readonly DeadLetter[]) => Promise<readonly boolean[]>;
}

/** Optional capability: inspect and replay the poison place. */
export interface DeadLetterCapability {
  /** Lists dead-lettered messages without removing them. */
  listDeadLetters(queue: QueueKind, options?: { limit?: number }): Promise<DeadLetter[]>;
  /**
   * Moves dead-lettered messages back to their queue, in one pass that terminates: each dead
   * letter that existed when the pass started moves at most once, and messages dead-lettered
   * while it runs (a running worker failing the replayed copies again) stay dead-lettered. Bodies
   * are copied byte for byte, whatever bytes the message carried. Returns how many moved.
   */
  replayDeadLetters(queue: QueueKind, options?: ReplayOptions): Promise<number>;
}

/**
 * Billable operations a transport performed since it was created, counted as its backend bills
 * them: Service Bus operations (a message sent, received or settled each), Storage transactions
 * (one per REST call), SQL statements.
 */
export interface TransportUsage {
  /** Operations by kind, e.g. `{ send: 120, receive: 118, settle: 118 }`. */
  readonly operations: Readonly<Record<string, number>>;
  /** The billed total (the sum of `operations` unless the backend bills some kinds differently). */
  readonly billable: number;
  /** Throttling answers the transport met (`ServerBusy`, HTTP 503), retried ones included where seen. */
  readonly throttled: number;
}

/** What a transport's operations cost at its published list prices. */
export interface CostEstimate {
  /** ISO 4217 code of `amount`. */
  currency: string;
  /** Cost of the operations counted. */
  amount: number;
  /** Which prices, of which date, and what is left out (e.g. a tier's fixed hourly charge). */
  basis: string;
}

/** Optional capability: billable operation counters and their cost. */
export interface UsageCapability {
  /** Counters since the transport was created (a snapshot; later calls return higher counts). */
  usage(): TransportUsage;
  /** The cost of `usage` at the driver's price table. */
  estimateCost?(usage: TransportUsage): CostEstimate;
}

/**
 * Tasks of one stage a transport with task-row claims may hand out: every task of the stage with
 * an index below `upto` has its row in the store.
 */
export interface TaskOffer {
  jobId: string;
  stage: number;
  /** Every task of the stage with an index below this one has its row: they may be claimed. */
  upto: number;
  /** Most tasks one delivery carries: the engine's `batching.packTasks` for the job's path. */
  packTasks: number;
  /** The job's priority: a receive claims from the lanes in the order it reads queued messages. */
  priority?: Priority;
  /** The fan-out's W3C trace context, carried by every delivery of the stage's tasks. */
  traceparent?: string;
  tracestate?: string;
}

/**
 * A claimed task to run again after a failed attempt (task-row claims): its row is due again after
 * `delayMs`, with no message.
 */
export interface TaskRowRetry {
  jobId: string;
  stage: number;
  index: number;
  /** Milliseconds until the task is due again; 0: at once. */
  delayMs: number;
  /** The job's priority: the task is claimed in its lane. */
  priority?: Priority;
  /** The W3C trace context its delivery carries (the stage's fan-out's). */
  traceparent?: string;
  tracestate?: string;
}

/**
 * A task of a claimed range to dead-letter at once (task-row claims): its row is terminal already,
 * so no message is sent for it; the letter is what a replay sends back.
 */
export interface TaskRowDeadLetter {
  /** The letter's body: the task's message, as a replay sends it back to the task queue. */
  body: string;
  messageId: string;
  reason: string;
  description: string;
  /** The job's priority: a replay sends the letter back in its lane. */
  priority?: Priority;
}

/**
 * Optional capability, **task-row claims**: a transport that shares the store's database keeps no
 * message per task. When it claims the store's rows ({@link TaskRowClaimsCapability.claimTaskRows}
 * with the store's `taskRowsIdentity()` resolves true), the engine offers a stage's
 * inserted tasks ({@link TaskRowClaimsCapability.offerTasks}) instead of sending a message for
 * each, and the task queue's `receive` claims ranges of the offered rows: each claimed range is
 * delivered as one `tasks` envelope of the range's pending tasks (their inputs read from the rows;
 * a range with none is not delivered), locked like any message, redelivered with `deliveryCount`
 * one higher and every task of the range (so a redelivery re-derives what a crash lost) when its
 * lock expires, and
 * settled like any message (a retry delays the range, a dead-letter moves its envelope to the
 * dead-letter place). A task of a range whose attempt failed is made due again in its row
 * ({@link TaskRowClaimsCapability.retryTaskRows}), and one poisoned is dead-lettered at once
 * ({@link TaskRowClaimsCapability.deadLetterTaskRows}): neither is sent. Messages the engine still
 * sends on that queue (tasks split out of a range to wait for flow control, replays) are received
 * with the claims, lanes first.
 */
export interface TaskRowClaimsCapability {
  /**
   * Takes on the task rows a store names (its `TaskRowsCapability.taskRowsIdentity()`): resolves
   * true when they are this transport's own (the same database and schema) and its claims are on
   * — its task receives claim offered rows from then on — and false otherwise, changing nothing.
   */
  claimTaskRows(rows: string): Promise<boolean>;
  /**
   * Lets receivers claim the offered tasks. An offer only ever grows: a smaller `upto` than the
   * stage's latest offer changes nothing, so a resumed fan-out may offer again. Durable before
   * it resolves, and it wakes waiting receivers.
   */
  offerTasks(offers: readonly TaskOffer[]): Promise<void>;
  /**
   * Makes claimed tasks due again, each after its delay: a task is then delivered on its own, as
   * a redelivered range is (`deliveryCount` above 1 and the task whatever its status, so the
   * engine claims it and counts the attempt). Durable before it resolves; wakes waiting receivers
   * when a task is due at once.
   */
  retryTaskRows(retries: readonly TaskRowRetry[]): Promise<void>;
  /**
   * Dead-letters poisoned tasks without a message: each letter is listed and replayed with the
   * task queue's dead letters (`DeadLetterCapability`), as if its message had been dead-lettered
   * in its lane. Durable before it resolves.
   */
  deadLetterTaskRows(letters: readonly TaskRowDeadLetter[]): Promise<void>;
}

/** A message queue the engine can send to and receive from. */
export interface Transport
  extends Partial<DeadLetterCapability>,
    Partial<UsageCapability>,
    Partial<TaskRowClaimsCapability> {
  /** Default name of the processing path, e.g. `memory`, `postgres`, `servicebus`, `storagequeue`. */
  readonly name: string;
  readonly limits: TransportLimits;
  /**
   * True when the transport keeps a lane per {@link Priority} on its task queue: each receive reads
   * the lanes in weighted order (`LaneSchedule`), so higher priorities run first and lower ones keep
   * a share. Absent or false: every message shares one lane, first in, first out.
   */
  readonly priorities?: boolean;
  /**
   * True when a receive takes the ready messages of different {@link OutgoingMessage.fairnessKey}s
   * in turn within each lane, each key's messages in order, and keeps a message's key through
   * retries, redeliveries and dead-letter replays. Absent or false: first in, first out.
   */
  readonly fairness?: boolean;
  /**
   * Sends one batch (at most `limits.maxBatchMessages` messages and `limits.maxBatchBytes` bytes).
   * Resolves once every message is durably accepted; rejects if any was not (the caller re-sends
   * the whole batch, receivers de-duplicate).
   */
  send(
    queue: QueueKind,
    messages: readonly OutgoingMessage[],
    options?: { abortSignal?: AbortSignal },
  ): Promise<void>;
  /** Receives up to `maxMessages` messages, waiting up to `waitMs` for the first. */
  receive(queue: QueueKind, options: ReceiveOptions): Promise<ReceivedMessage[]>;
  /**
   * Settles messages. Each settlement is applied exactly as asked even when outcomes differ within
   * one call. A settlement whose lock was lost is ignored (the message comes back).
   */
  settle(settlements: readonly Settlement[]): Promise<void>;
  /** Keeps a long-running message invisible / locked for another `ms` milliseconds. */
  extendLock?(message: ReceivedMessage, ms: number): Promise<void>;
  /** Resolves when the backend is reachable (used by `/readyz`). */
  ping?(): Promise<void>;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}
