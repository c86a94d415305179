import type { QueueKind } from '@switchyard/core';
import { SwitchyardError, ValidationError } from '@switchyard/core';
import {
  byPriority,
  type CostEstimate,
  type DeadLetter,
  LaneSchedule,
  MAX_PACKED_TASKS,
  type OutgoingMessage,
  PRIORITIES,
  type Priority,
  packHead,
  priorityIssue,
  type ReceivedMessage,
  type ReceiveOptions,
  type ReplayOptions,
  type Settlement,
  type TaskOffer,
  type TaskRowDeadLetter,
  type TaskRowRetry,
  type Transport,
  type TransportLimits,
  type TransportUsage,
  Wakeups,
} from '@switchyard/core/driver';
import { type ConnectionOptions, connect, type SqlAdapter } from './adapter.js';
import { quoteSchema } from './errors.js';
import { migrate } from './migrate.js';
import { POSTGRES_LIST_PRICES, type PostgresPrices, postgresCost } from './prices.js';
import * as QUERIES from './sql/queue.js';
import * as ROW_CLAIMS from './sql/rowClaims.js';

/** Options of {@link postgresTransport}. */
export interface PostgresTransportOptions extends ConnectionOptions {
  /** Schema holding the queue tables (shared with the store). @defaultValue `'switchyard'` */
  schema?: string;
  /** Processing path name; also keys the queues, so two transports with different names never mix. @defaultValue `'postgres'` */
  name?: string;
  /** How often a waiting `receive` re-checks without a notification (delayed messages, lost NOTIFY). @defaultValue 1000 */
  pollIntervalMs?: number;
  /** Visibility timeout when `receive` is not given one. @defaultValue 30000 */
  visibilityTimeoutMs?: number;
  /**
   * Tasks per task message recommended to the engine (`limits.packTasks`; a Switchyard's
   * `batching.packTasks` overrides it). On this path a message costs more than a short task — a
   * row inserted, locked and deleted, each with its index entries and WAL — so by default up to
   * 64 of a fan-out's tasks share one; the engine still spreads a small stage over several
   * messages, and each task keeps its own row, attempts, retries and dead-letter. `1` sends one
   * message per task.
   * @defaultValue 64
   */
  packTasks?: number;
  /**
   * Tasks per handler slot a worker may hold beyond its slots, recommended to the engine
   * (`limits.prefetchPerSlot`; `work({ prefetch })` overrides it). A worker holds only what its
   * slots finish in one receive round trip, so this matters for short tasks: with `work()`'s 64
   * slots they would otherwise wait for a receive, admission and barrier statement of at most 64
   * tasks each. `0` recommends none.
   * @defaultValue 32
   */
  prefetchPerSlot?: number;
  /**
   * Task-row claims: when the store is a `postgresStore` on the same database and schema, a
   * task's row is its message. The engine offers a stage's inserted tasks instead of sending
   * them, and this transport's task-queue `receive` claims ranges of the rows (a lease row per
   * range of up to `packTasks` tasks), so a task costs its insert and its outcome and nothing in
   * between. Messages the engine still sends (retries, flow-control waits, re-drives, replays)
   * stay queue rows, received first. `false` keeps one queue message per task or pack, as with
   * any other store.
   * @defaultValue true
   */
  claimTaskRows?: boolean;
  /** Overrides of the reported limits. */
  limits?: Partial<TransportLimits>;
  /** The server's price for `estimateCost`. @defaultValue {@link POSTGRES_LIST_PRICES} */
  prices?: PostgresPrices;
}

/**
 * The statements the transport counts in `usage().operations`, named after what they do:
 * `send` (insert a batch, one per priority lane), `receive` (lock due messages; an empty poll
 * counts too), `complete` / `retry` / `deadLetter` (settle a group of messages, one per queue lane
 * and action; `deadLetter` also dead-letters a claimed range's poisoned tasks), `notify` (wake
 * receivers after a retry made messages due), `extendLock`, `offer` and `claim` (task-row claims:
 * offer a stage's tasks; claim ranges of them in a task receive), `retryRows` (task-row claims:
 * make a range's failed tasks due again), `listDeadLetters`, `replayRead` (a replay pass's bounds
 * and batches), `replay` (move dead letters back), `listen` / `unlisten` (subscribe to the wake-up
 * channel, once per transport; close) and `ping`.
 */
export type PostgresStatementKind =
  | 'send'
  | 'receive'
  | 'complete'
  | 'retry'
  | 'deadLetter'
  | 'notify'
  | 'extendLock'
  | 'offer'
  | 'claim'
  | 'retryRows'
  | 'listDeadLetters'
  | 'replayRead'
  | 'replay'
  | 'listen'
  | 'unlisten'
  | 'ping';

/** Every kind, in the order `usage().operations` lists them. */
const STATEMENT_KINDS: readonly PostgresStatementKind[] = [
  'send',
  'receive',
  'complete',
  'retry',
  'deadLetter',
  'notify',
  'extendLock',
  'offer',
  'claim',
  'retryRows',
  'listDeadLetters',
  'replayRead',
  'replay',
  'listen',
  'unlisten',
  'ping',
];

/** What {@link PostgresTransport.usage} returns: statements by kind, and the time they took. */
export interface PostgresTransportUsage extends TransportUsage {
  /**
   * Statements run since the transport was created, by {@link PostgresStatementKind} (kinds not
   * run yet are absent). Schema setup (the migrations on first use) is not counted.
   */
  readonly operations: Readonly<Partial<Record<PostgresStatementKind, number>>>;
  /**
   * The statements counted, all kinds together. PostgreSQL bills no statement: this is the unit
   * of work `metrics()` shows per task, not what is billed (see `busyMs` and `estimateCost`).
   */
  readonly billable: number;
  /** Always 0: PostgreSQL answers no throttling (a refused connection is retried by the driver). */
  readonly throttled: number;
  /**
   * Wall-clock time the transport had at least one statement in flight, ms, measured at the
   * client (round trips and waits for a connection included; statements overlapping count once).
   */
  readonly busyMs: number;
}

/** The Postgres transport: a {@link Transport} with dead-letter inspection and replay, and usage counters. */
export interface PostgresTransport extends Transport {
  /** Dead letters of `queue` (every lane of the task queue), oldest first, at most `limit` (100). */
  listDeadLetters(queue: QueueKind, options?: { limit?: number }): Promise<DeadLetter[]>;
  /**
   * Moves dead letters of `queue` back to the lane they came from, in batches of 500, in one pass
   * that moves each letter existing at its start at most once. Returns how many moved.
   */
  replayDeadLetters(queue: QueueKind, options?: ReplayOptions): Promise<number>;
  /**
   * The statements the transport ran since it was created, by kind, and the time they kept it
   * busy (a snapshot). Counting costs an integer add per statement.
   */
  usage(): PostgresTransportUsage;
  /**
   * The server's hourly price (`prices`) × the time `usage` records the transport busy, or the
   * time so far for a `usage` without `busyMs`. The `basis` says what is left out: storage, the
   * server's idle hours and the store's statements.
   */
  estimateCost(usage: TransportUsage): CostEstimate;
}

const MiB = 1024 * 1024;
/** Dead letters a replay pass reads (and offers to `accept`) at a time. */
const REPLAY_BATCH = 500;

interface DeadLetterRow {
  id: string;
  queue: string;
  body: string;
  reason: string;
  description: string | null;
  dead_lettered_at: Date;
}

interface MessageRow {
  id: string;
  /** The lane's key, on a task queue receive. */
  queue?: string;
  body: string;
  delivery_count: number;
  enqueued_at: Date;
}

function toDeadLetter(queue: QueueKind, r: DeadLetterRow): DeadLetter {
  return {
    queue,
    id: r.id,
    body: r.body,
    reason: r.reason,
    deadLetteredAt: r.dead_lettered_at,
    ...(r.description === null ? {} : { description: r.description }),
  };
}

/**
 * A queue {@link Transport} on PostgreSQL (or PGlite) tables: batched `FOR UPDATE SKIP LOCKED`
 * dequeue, visibility timeout, delivery count, delayed delivery, a dead-letter table, and
 * `LISTEN/NOTIFY` wake-ups so an idle `receive` does not poll tightly. `usage()` counts its
 * statements by kind and the time they kept it busy; `estimateCost` prices that time at the
 * server's hourly list price (`prices`, {@link POSTGRES_LIST_PRICES} by default).
 *
 * @throws ValidationError when `schema` is not a plain lower-case identifier.
 */
export function postgresTransport(options: PostgresTransportOptions): PostgresTransport {
  return new PostgresTransportImpl(options);
}

/** Tasks per task message recommended when `packTasks` is not set. */
const DEFAULT_PACK_TASKS = 64;
/** Tasks per slot a worker may prefetch, recommended when `prefetchPerSlot` is not set. */
const DEFAULT_PREFETCH_PER_SLOT = 32;
/** The largest `prefetchPerSlot` accepted: beyond it a worker would hold far more than it runs. */
const MAX_PREFETCH_PER_SLOT = 1000;

/**
 * A recommendation the transport reports in its limits: `limits[name]` when given (it wins, and is
 * checked under that name), else the option `name`, else `fallback`; an integer from `min` to `max`.
 * @throws {ValidationError} naming the field the value came from
 */
function recommendation(
  options: PostgresTransportOptions,
  name: 'packTasks' | 'prefetchPerSlot',
  { fallback, min, max }: { fallback: number; min: number; max: number },
): number {
  const [field, value] =
    options.limits?.[name] === undefined
      ? [name, options[name] ?? fallback]
      : [`limits.${name}`, options.limits[name]];
  if (!Number.isInteger(value) || value < min || value > max) {
    const message = `must be an integer from ${min} to ${max}`;
    throw new ValidationError(`[switchyard] [postgres] ${field} ${message}`, [
      { path: field, message },
    ]);
  }
  return value;
}

/** Every statement of `sql/queue.ts`, built once for the transport's schema. */
type Queries = { [K in keyof typeof QUERIES]: string };
/** Every statement of `sql/rowClaims.ts`, built once for the transport's schema. */
type RowClaimQueries = { [K in keyof typeof ROW_CLAIMS]: string };

/** A claimed range of task rows, as the claim statement returns it. */
interface RangeRow {
  id: string;
  job_id: string;
  stage: number;
  lane: Priority;
  traceparent: string | null;
  tracestate: string | null;
  delivery_count: number;
  enqueued_at: Date;
  /** The range's open tasks as a JSON array of `{ index, input }`; null when none is open. */
  tasks: string | null;
}

/** A claimed range's message id: its lease's id, marked so a settlement finds the lease. */
const RANGE_ID_PREFIX = 'r';

function isRange(message: ReceivedMessage): boolean {
  return message.queue === 'task' && message.id.startsWith(RANGE_ID_PREFIX);
}

function leaseIdOf(message: ReceivedMessage): string {
  return message.id.slice(RANGE_ID_PREFIX.length);
}

/**
 * A claimed range's message: a `tasks` envelope of its open tasks, their entries spliced in as the
 * database wrote them (nothing parsed and written again).
 */
function rangeMessage(r: RangeRow & { tasks: string }): ReceivedMessage {
  const head = packHead({
    v: 1,
    kind: 'tasks',
    jobId: r.job_id,
    stage: r.stage,
    ...(r.traceparent === null ? {} : { traceparent: r.traceparent }),
    ...(r.traceparent === null || r.tracestate === null ? {} : { tracestate: r.tracestate }),
  });
  return {
    queue: 'task',
    id: RANGE_ID_PREFIX + r.id,
    // The array's own `[` is the head's: its entries and `]` follow, then the envelope's `}`.
    body: `${head}${r.tasks.slice(1)}}`,
    deliveryCount: r.delivery_count,
    enqueuedAt: r.enqueued_at,
    priority: r.lane,
  };
}

/**
 * A task queue's priority lanes are queues of their own in the one table: the `normal` lane keeps
 * the queue's own key (messages sent before lanes existed stay where they are), the others add a
 * suffix. Stage messages have one lane.
 */
const LANE_SUFFIX: Readonly<Record<Priority, string>> = { high: ':high', normal: '', low: ':low' };

/** The lane of a key this transport built, and the queue key it belongs to. */
function splitLane(key: string): { base: string; priority: Priority } {
  for (const priority of ['high', 'low'] as const) {
    const suffix = LANE_SUFFIX[priority];
    if (key.endsWith(suffix)) return { base: key.slice(0, -suffix.length), priority };
  }
  return { base: key, priority: 'normal' };
}

class PostgresTransportImpl implements PostgresTransport {
  readonly name: string;
  readonly limits: TransportLimits;
  readonly priorities = true;
  private readonly lanes = new LaneSchedule();
  private readonly schema: string;
  private readonly quoted: string;
  private readonly q: Queries;
  private readonly rc: RowClaimQueries;
  /**
   * `claiming`: an engine's store shares this transport's task rows (`claimTaskRows`). An
   * object, so that a wrapper made with `Object.create(transport)` shares it.
   */
  private readonly rowClaims = { claiming: false };
  private readonly channel: string;
  private readonly pollIntervalMs: number;
  private readonly visibilityMs: number;
  private ready: Promise<SqlAdapter> | undefined;
  private adapter: SqlAdapter | undefined;
  /** Waiting receivers per queue key, woken by NOTIFY or by this transport's own sends. */
  private readonly waiters = new Wakeups<string>();
  private unlisten: Promise<(() => Promise<void>) | undefined> | undefined;
  private closed = false;
  private readonly prices: PostgresPrices;
  /** Statements run, by kind. */
  private readonly counts: Record<PostgresStatementKind, number> = Object.fromEntries(
    STATEMENT_KINDS.map((kind) => [kind, 0]),
  ) as Record<PostgresStatementKind, number>;
  /** Statements in flight now, and since when (`performance.now()`) there has been one. */
  private inFlight = 0;
  private busySince = 0;
  /** Time with a statement in flight, ms, up to the last moment none was. */
  private busyMs = 0;

  constructor(private readonly options: PostgresTransportOptions) {
    this.name = options.name ?? 'postgres';
    this.schema = options.schema ?? 'switchyard';
    this.quoted = quoteSchema(this.schema);
    this.q = Object.fromEntries(
      Object.entries(QUERIES).map(([k, build]) => [k, build(this.quoted)]),
    ) as Queries;
    this.rc = Object.fromEntries(
      Object.entries(ROW_CLAIMS).map(([k, build]) => [k, build(this.quoted)]),
    ) as RowClaimQueries;
    // Channel names are identifiers: the validated schema name keeps this one plain.
    this.channel = `${this.schema.slice(0, 50)}_queue`;
    this.pollIntervalMs = Math.max(10, options.pollIntervalMs ?? 1000);
    this.visibilityMs = options.visibilityTimeoutMs ?? 30_000;
    this.prices = options.prices ?? POSTGRES_LIST_PRICES;
    const concurrent = options.pglite === undefined;
    const packTasks = recommendation(options, 'packTasks', {
      fallback: DEFAULT_PACK_TASKS,
      min: 1,
      max: MAX_PACKED_TASKS,
    });
    const prefetchPerSlot = recommendation(options, 'prefetchPerSlot', {
      fallback: DEFAULT_PREFETCH_PER_SLOT,
      min: 0,
      max: MAX_PREFETCH_PER_SLOT,
    });
    this.limits = {
      maxMessageBytes: MiB,
      maxBatchMessages: 1000,
      maxBatchBytes: 16 * MiB,
      sendConcurrency: concurrent ? 4 : 1,
      maxReceiveMessages: 500,
      packTasks,
      prefetchPerSlot,
      ...options.limits,
    };
  }

  private db(): Promise<SqlAdapter> {
    if (this.closed)
      return Promise.reject(
        new SwitchyardError('CLOSED', '[switchyard] [postgres] transport used after close()'),
      );
    this.ready ??= (async () => {
      const { adapter } = await connect(this.options, 'postgresTransport');
      this.adapter = adapter;
      await migrate(adapter, this.schema, this.quoted);
      return adapter;
    })();
    this.ready.catch(() => {
      this.ready = undefined;
    });
    return this.ready;
  }

  private key(queue: QueueKind): string {
    if (queue !== 'stage' && queue !== 'task') {
      throw new ValidationError('[switchyard] [postgres] unknown queue', [
        { path: 'queue', message: 'must be stage or task' },
      ]);
    }
    return `${this.name}/${queue}`;
  }

  /** The key of a lane of `queue`: stage messages have one lane, task messages three. */
  private laneKey(queue: QueueKind, priority: Priority | undefined): string {
    const key = this.key(queue);
    return queue === 'task' && priority ? key + LANE_SUFFIX[priority] : key;
  }

  /** Every key of `queue`: its lanes, highest first. */
  private keysOf(queue: QueueKind): string[] {
    return queue === 'task' ? PRIORITIES.map((p) => this.laneKey(queue, p)) : [this.key(queue)];
  }

  async send(
    queue: QueueKind,
    messages: readonly OutgoingMessage[],
    options?: { abortSignal?: AbortSignal },
  ): Promise<void> {
    this.key(queue); // an unknown queue kind is refused first, even for an empty batch
    if (messages.length === 0) return;
    if (messages.length > this.limits.maxBatchMessages) {
      throw new ValidationError(
        `[switchyard] [postgres] batch of ${messages.length} messages exceeds ${this.limits.maxBatchMessages}`,
        [{ path: 'messages', message: `at most ${this.limits.maxBatchMessages} messages` }],
      );
    }
    let bytes = 0;
    messages.forEach((m, i) => {
      const bad = priorityIssue(m, i);
      if (bad)
        throw new ValidationError(`[switchyard] [postgres] ${bad.path} ${bad.message}`, [bad]);
      const size = Buffer.byteLength(m.body, 'utf8');
      bytes += size;
      if (size > this.limits.maxMessageBytes) {
        throw new ValidationError(
          `[switchyard] [postgres] message of ${size} bytes exceeds ${this.limits.maxMessageBytes}`,
          [
            {
              path: `messages[${i}].body`,
              message: `at most ${this.limits.maxMessageBytes} bytes`,
            },
          ],
        );
      }
    });
    if (bytes > this.limits.maxBatchBytes) {
      throw new ValidationError('[switchyard] [postgres] batch exceeds maxBatchBytes', [
        { path: 'messages', message: `at most ${this.limits.maxBatchBytes} bytes` },
      ]);
    }
    throwIfAborted(options?.abortSignal);
    const db = await this.db();
    // One statement per lane: a job's messages share its priority, so almost always one. Stage
    // messages have one lane whatever their priority.
    const lanes =
      queue === 'task' ? byPriority(messages) : new Map([['normal' as const, messages]]);
    for (const [priority, lane] of lanes) {
      await this.run(db, 'send', this.q.sendMessages, [
        this.laneKey(queue, priority),
        // One JSON array: bodies are mostly JSON themselves, and escaping their quotes natively
        // beats doing it element by element for an array literal.
        JSON.stringify(lane.map((m) => m.body)),
        lane.map((m) => m.messageId ?? null),
        lane.map((m) => Math.max(0, Math.round(m.delayMs ?? 0))),
        this.channel,
      ]);
    }
    // This process's own receivers need not wait for the NOTIFY's trip through the server.
    if (messages.some((m) => !m.delayMs)) this.wake(this.key(queue));
  }

  /** Wakes this process's receivers waiting on `queueKey` (whichever lane got the message). */
  private wake(queueKey: string): void {
    this.waiters.wake(splitLane(queueKey).base);
  }

  async receive(queue: QueueKind, options: ReceiveOptions): Promise<ReceivedMessage[]> {
    const key = this.key(queue);
    const max = Math.max(1, Math.min(options.maxMessages, this.limits.maxReceiveMessages));
    const visibility = Math.max(1, Math.round(options.visibilityTimeoutMs ?? this.visibilityMs));
    const signal = options.abortSignal;
    const deadline = Date.now() + Math.max(0, options.waitMs ?? 0);
    const db = await this.db();
    if (deadline > Date.now()) await this.ensureListening(db);
    for (;;) {
      if (signal?.aborted) return [];
      // Register before querying so a NOTIFY arriving mid-query is not missed.
      const woken = this.waiters.next(key);
      const lanes = queue === 'task' ? this.lanes.next() : [];
      const rows = await (queue === 'task'
        ? this.run<MessageRow>(db, 'receive', this.q.receiveLanes, [
            ...lanes.map((lane) => key + LANE_SUFFIX[lane]),
            max,
            visibility,
          ])
        : this.run<MessageRow>(db, 'receive', this.q.receiveMessages, [key, max, visibility]));
      const messages: ReceivedMessage[] = rows.map((r) => ({
        queue,
        id: r.id,
        body: r.body,
        deliveryCount: r.delivery_count,
        enqueuedAt: r.enqueued_at,
        ...(r.queue === undefined ? {} : { priority: splitLane(r.queue).priority }),
      }));
      if (queue === 'task' && this.rowClaims.claiming && messages.length < max)
        messages.push(...(await this.claim(db, { max: max - messages.length, visibility, lanes })));
      if (messages.length > 0 || Date.now() >= deadline) {
        woken.cancel();
        return messages;
      }
      await waitFor(woken.promise, Math.min(this.pollIntervalMs, deadline - Date.now()), signal);
      woken.cancel();
    }
  }

  async settle(settlements: readonly Settlement[]): Promise<void> {
    if (settlements.length === 0) return;
    const db = await this.db();
    // Group by queue and action: one statement per group, however many messages.
    const groups = new Map<string, Settlement[]>();
    const ranges: Settlement[] = [];
    for (const s of settlements) {
      if (isRange(s.message)) {
        ranges.push(s);
        continue;
      }
      const group = `${this.laneKey(s.message.queue, s.message.priority)}\u0000${s.action}`;
      const list = groups.get(group) ?? [];
      list.push(s);
      groups.set(group, list);
    }
    const wake = new Set<string>();
    const settlingRanges = ranges.length > 0 ? this.settleRanges(db, ranges) : undefined;
    await Promise.all(
      [...groups.values()].map(async (list) => {
        const first = list[0]!;
        const key = this.laneKey(first.message.queue, first.message.priority);
        const ids = list.map((s) => s.message.id);
        const counts = list.map((s) => s.message.deliveryCount);
        if (first.action === 'complete') {
          await this.run(db, 'complete', this.q.completeMessages, [key, ids, counts]);
        } else if (first.action === 'retry') {
          const delays = list.map((s) =>
            s.action === 'retry' ? Math.max(0, Math.round(s.delayMs)) : 0,
          );
          const rows = await this.run<{ due: boolean }>(db, 'retry', this.q.retryMessages, [
            key,
            ids,
            counts,
            delays,
          ]);
          if (rows.some((r) => r.due)) wake.add(key);
        } else {
          const reasons = list.map((s) => (s.action === 'deadLetter' ? s.reason : ''));
          const descriptions = list.map((s) =>
            s.action === 'deadLetter' ? (s.description ?? null) : null,
          );
          await this.run(db, 'deadLetter', this.q.deadLetterMessages, [
            key,
            ids,
            counts,
            reasons,
            descriptions,
          ]);
        }
      }),
    );
    if (settlingRanges && (await settlingRanges)) wake.add(this.key('task'));
    for (const key of wake)
      await this.run(db, 'notify', 'SELECT pg_notify($1, $2)', [this.channel, key]);
  }

  /**
   * Settles claimed ranges: one statement per action. Resolves true when a retry made a range
   * due at once (its receivers are woken).
   */
  private async settleRanges(db: SqlAdapter, settlements: readonly Settlement[]): Promise<boolean> {
    const key = this.key('task');
    const byAction = new Map<Settlement['action'], Settlement[]>();
    for (const s of settlements) {
      const list = byAction.get(s.action) ?? [];
      list.push(s);
      byAction.set(s.action, list);
    }
    const due = await Promise.all(
      [...byAction].map(async ([action, list]) => {
        const ids = list.map((s) => leaseIdOf(s.message));
        const counts = list.map((s) => s.message.deliveryCount);
        if (action === 'complete') {
          await this.run(db, 'complete', this.rc.completeLeases, [key, ids, counts]);
          return false;
        }
        if (action === 'retry') {
          const delays = list.map((s) =>
            s.action === 'retry' ? Math.max(0, Math.round(s.delayMs)) : 0,
          );
          const rows = await this.run<{ due: boolean }>(db, 'retry', this.rc.retryLeases, [
            key,
            ids,
            counts,
            delays,
          ]);
          return rows.some((r) => r.due);
        }
        await this.run(db, 'deadLetter', this.rc.deadLetterLeases, [
          key,
          ids,
          counts,
          list.map((s) => s.message.body),
          list.map((s) => (s.action === 'deadLetter' ? s.reason : '')),
          list.map((s) => (s.action === 'deadLetter' ? (s.description ?? null) : null)),
          `${this.quoted}.queue_messages`,
        ]);
        return false;
      }),
    );
    return due.includes(true);
  }

  async claimTaskRows(rows: string): Promise<boolean> {
    if (this.options.claimTaskRows === false) return false;
    const db = await this.db();
    // Uncounted, as the schema setup before it: it is read once per engine.
    const [own] = await db.query<{ id: string }>(this.rc.taskRowsIdentity);
    if (own?.id !== rows) return false;
    this.rowClaims.claiming = true;
    return true;
  }

  async offerTasks(offers: readonly TaskOffer[]): Promise<void> {
    if (offers.length === 0) return;
    // One row per stage (the statement may touch a row once), in key order (the lock order).
    const latest = new Map<string, TaskOffer>();
    for (const o of offers) {
      const id = `${o.jobId}\u0000${o.stage}`;
      const seen = latest.get(id);
      if (!seen || o.upto > seen.upto) latest.set(id, o);
    }
    const rows = [...latest.values()].sort((a, b) =>
      a.jobId === b.jobId ? a.stage - b.stage : a.jobId < b.jobId ? -1 : 1,
    );
    const db = await this.db();
    await this.run(db, 'offer', this.rc.offerTasks, [
      this.key('task'),
      rows.map((o) => o.jobId),
      rows.map((o) => o.stage),
      rows.map((o) => o.priority ?? 'normal'),
      rows.map((o) => o.upto),
      rows.map((o) => o.packTasks),
      rows.map((o) => o.traceparent ?? null),
      rows.map((o) => o.tracestate ?? null),
      this.channel,
    ]);
  }

  async retryTaskRows(retries: readonly TaskRowRetry[]): Promise<void> {
    if (retries.length === 0) return;
    const db = await this.db();
    await this.run(db, 'retryRows', this.rc.retryTaskRows, [
      this.key('task'),
      retries.map((r) => r.jobId),
      retries.map((r) => r.stage),
      retries.map((r) => r.index),
      retries.map((r) => r.priority ?? 'normal'),
      retries.map((r) => Math.max(0, Math.round(r.delayMs))),
      retries.map((r) => r.traceparent ?? null),
      retries.map((r) => r.tracestate ?? null),
      this.channel,
    ]);
  }

  async deadLetterTaskRows(letters: readonly TaskRowDeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    const db = await this.db();
    await this.run(db, 'deadLetter', this.rc.deadLetterTaskRows, [
      this.key('task'),
      letters.map((l) => l.priority ?? 'normal'),
      letters.map((l) => l.body),
      letters.map((l) => l.messageId),
      letters.map((l) => l.reason),
      letters.map((l) => l.description),
      `${this.quoted}.queue_messages`,
    ]);
  }

  /**
   * Claims up to `max` ranges of offered task rows (expired leases first) for a task receive;
   * a range with no open task left is dropped, not delivered.
   */
  private async claim(
    db: SqlAdapter,
    { max, visibility, lanes }: { max: number; visibility: number; lanes: readonly Priority[] },
  ): Promise<ReceivedMessage[]> {
    const key = this.key('task');
    const params = [key, max, visibility, lanes];
    let rows = await this.run<RangeRow>(db, 'claim', this.rc.claimRanges, params);
    if (rows.length === 0)
      rows = await this.run<RangeRow>(db, 'claim', this.rc.claimRangesWaiting, params);
    const messages: ReceivedMessage[] = [];
    const empty: string[] = [];
    for (const r of rows) {
      if (r.tasks === null) empty.push(r.id);
      else messages.push(rangeMessage(r as RangeRow & { tasks: string }));
    }
    if (empty.length > 0) await this.run(db, 'complete', this.rc.dropLeases, [key, empty]);
    return messages;
  }

  async extendLock(message: ReceivedMessage, ms: number): Promise<void> {
    const db = await this.db();
    if (isRange(message)) {
      await this.run(db, 'extendLock', this.rc.extendLease, [
        this.key('task'),
        leaseIdOf(message),
        message.deliveryCount,
        Math.max(1, Math.round(ms)),
      ]);
      return;
    }
    await this.run(db, 'extendLock', this.q.extendLock, [
      this.laneKey(message.queue, message.priority),
      message.id,
      message.deliveryCount,
      Math.max(1, Math.round(ms)),
    ]);
  }

  async listDeadLetters(queue: QueueKind, options: { limit?: number } = {}): Promise<DeadLetter[]> {
    const db = await this.db();
    const rows = await this.run<DeadLetterRow>(db, 'listDeadLetters', this.q.listDeadLetters, [
      this.keysOf(queue),
      Math.max(1, options.limit ?? 100),
    ]);
    return rows.map((r) => toDeadLetter(queue, r));
  }

  async replayDeadLetters(queue: QueueKind, options: ReplayOptions = {}): Promise<number> {
    const db = await this.db();
    const keys = this.keysOf(queue);
    const ids = options.ids?.filter((id) => /^\d{1,18}$/.test(id)) ?? null;
    if (ids?.length === 0) return 0;
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const [start] = await this.run<{ max_id: string; started_at: Date }>(
      db,
      'replayRead',
      this.q.replayStart,
      [keys],
    );
    if (!start) return 0;
    let after = '0';
    let replayed = 0;
    while (replayed < limit) {
      const rows = await this.run<DeadLetterRow>(db, 'replayRead', this.q.replayBatch, [
        keys,
        start.max_id,
        start.started_at,
        after,
        ids,
        Math.min(REPLAY_BATCH, limit - replayed),
      ]);
      if (rows.length === 0) break;
      after = rows[rows.length - 1]!.id;
      const letters = rows.map((r) => toDeadLetter(queue, r));
      const verdicts = options.accept ? await options.accept(letters) : letters.map(() => true);
      const chosen = letters.filter((_, i) => verdicts[i] === true).map((l) => l.id);
      if (chosen.length === 0) continue;
      const [row] = await this.run<{ replayed: number }>(db, 'replay', this.q.replayDeadLetters, [
        keys,
        chosen,
        this.channel,
      ]);
      replayed += row?.replayed ?? 0;
    }
    return replayed;
  }

  async ping(): Promise<void> {
    await this.run(await this.db(), 'ping', 'SELECT 1');
  }

  usage(): PostgresTransportUsage {
    const operations: Partial<Record<PostgresStatementKind, number>> = {};
    let billable = 0;
    for (const kind of STATEMENT_KINDS) {
      const n = this.counts[kind];
      if (n === 0) continue;
      operations[kind] = n;
      billable += n;
    }
    const open = this.inFlight > 0 ? performance.now() - this.busySince : 0;
    return { operations, billable, throttled: 0, busyMs: this.busyMs + open };
  }

  estimateCost(usage: TransportUsage): CostEstimate {
    const recorded = (usage as Partial<PostgresTransportUsage>).busyMs;
    return postgresCost({
      usage,
      busyMs: typeof recorded === 'number' ? recorded : this.usage().busyMs,
      prices: this.prices,
    });
  }

  /** Runs one statement, counted as `kind` and timed while in flight. */
  private async run<R = Record<string, unknown>>(
    db: SqlAdapter,
    kind: PostgresStatementKind,
    text: string,
    params?: readonly unknown[],
  ): Promise<R[]> {
    this.begin(kind);
    try {
      return await db.query<R>(text, params);
    } finally {
      this.end();
    }
  }

  /** A statement of `kind` starts: counted, and the busy clock starts if none was in flight. */
  private begin(kind: PostgresStatementKind): void {
    this.counts[kind]++;
    if (this.inFlight++ === 0) this.busySince = performance.now();
  }

  /** A statement ended: the busy clock stops if it was the last in flight. */
  private end(): void {
    if (--this.inFlight === 0) this.busyMs += performance.now() - this.busySince;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.waiters.wakeAll();
    const unlisten = await this.unlisten?.catch(() => undefined);
    if (unlisten) {
      this.begin('unlisten');
      await unlisten()
        .catch(() => {})
        .finally(() => this.end());
    }
    await this.ready?.catch(() => undefined);
    await this.adapter?.close();
  }

  /** Subscribes once to the schema's channel; a failure only means falling back to polling. */
  private ensureListening(db: SqlAdapter): Promise<unknown> {
    if (this.unlisten) return this.unlisten;
    this.begin('listen');
    this.unlisten = db
      .listen(this.channel, (queueKey) => this.wake(queueKey))
      .catch(() => {
        this.unlisten = undefined;
        return undefined;
      })
      .finally(() => this.end());
    return this.unlisten;
  }
}

/** Resolves on `promise`, after `ms`, or on abort, whichever comes first. */
function waitFor(
  promise: Promise<void>,
  ms: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
    promise.then(done, done);
  });
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted)
    throw new SwitchyardError('ABORTED', '[switchyard] [postgres] send aborted', {
      cause: signal.reason,
    });
}
