/**
 * `serviceBusTransport`: the core {@link Transport} on Azure Service Bus (`@azure/service-bus`).
 * @module
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  isServiceBusError,
  RetryMode,
  type RetryOptions,
  ServiceBusClient,
  type ServiceBusMessage,
  type ServiceBusMessageBatch,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
  type ServiceBusSender,
  type TokenCredential,
} from '@azure/service-bus';
import { azureCredential, type ConnectionSource, resolveConnectionSource } from '@switchyard/azure';
import {
  type FieldIssue,
  type QueueKind,
  type SecretInput,
  type SecretSource,
  SwitchyardError,
  ValidationError,
} from '@switchyard/core';
import {
  byPriority,
  type CostEstimate,
  type DeadLetter,
  type DeadLetterCapability,
  LaneSchedule,
  MAX_PACKED_TASKS,
  type OutgoingMessage,
  type Priority,
  priorityIssue,
  type ReceivedMessage,
  type ReceiveOptions,
  type ReplayOptions,
  redactSecrets,
  type Settlement,
  type Transport,
  type TransportLimits,
  type TransportUsage,
  UsageCounter,
  withSecretRotation,
} from '@switchyard/core/driver';
import Long from 'long';
import pLimit from 'p-limit';
import { AdaptiveCreditBucket } from './adaptive-pacing.js';
import {
  checkLaneNames,
  type LaneReceiver,
  laneQueueNames,
  laneQueues,
  queueNamesOf,
  receiveFromLanes,
} from './lanes.js';
import { OutcomeLanes } from './outcome-lanes.js';
import { SERVICE_BUS_LIST_PRICES, type ServiceBusPrices, serviceBusCost } from './prices.js';
import { ReceivePump } from './pump.js';
import { CreditBucket } from './rate-limit.js';
import { type ServiceBusTierName, serviceBusTierDefaults } from './tiers.js';

/** Options of {@link serviceBusTransport}. Give exactly one of `connectionString`, `secret`, `fullyQualifiedNamespace`. */
export interface ServiceBusTransportOptions {
  /** A connection string, or a secret reference (`{ secret: 'servicebus-connection' }`) resolving to one. */
  connectionString?: SecretInput;
  /** `<namespace>.servicebus.windows.net`, used with `credential` (default: `DefaultAzureCredential`). */
  fullyQualifiedNamespace?: string;
  /** Entra ID credential for `fullyQualifiedNamespace`. */
  credential?: TokenCredential;
  /** Name of a secret holding the connection string (shorthand for `connectionString: { secret }`). */
  secret?: string;
  /** Where secret references resolve when they name no source. @defaultValue environment variables */
  secrets?: SecretSource;
  /** Queue names. @defaultValue `{ stage: 'sb-jobs', task: 'sb-tasks' }` */
  queues?: { stage?: string; task?: string };
  /**
   * Keeps a lane per job priority on the task queue (`transport.priorities`): `<task>-high` and
   * `<task>-low` next to the task queue, which is the `normal` lane. Each task message goes to
   * its priority's queue and stays there through retries and dead-letter replays; a receive reads
   * the lanes by weight (6 : 3 : 1 while all are busy). Off by default because the two extra
   * queues must exist on the namespace. The stage queue has no lanes.
   * @defaultValue false
   */
  priorityLanes?: boolean;
  /** Most messages per send (100 is the transaction limit; the service allows about 4,500). @defaultValue 100 */
  maxBatchMessages?: number;
  /** How many batches of one fan-out are sent at once. @defaultValue 8 */
  sendConcurrency?: number;
  /**
   * The namespace's tier: applies that tier's pacing, prefetch and recommended pack size
   * (`serviceBusTierDefaults`), and prices `estimateCost` by it. Without it (and without
   * `rateLimit`): adaptive pacing (none until the namespace first answers `ServerBusy`, then a
   * credit bucket at a rate learnt from the refusals), prefetch 100, one task per message,
   * Standard prices.
   */
  tier?: ServiceBusTierName;
  /** Premium: the namespace's messaging units (for `estimateCost`). @defaultValue 1 */
  messagingUnits?: number;
  /**
   * Credit budget: each message sent, received or settled costs one (Standard: 1,000/s per
   * namespace); `burst` bounds what is spent at once after idling.
   * @defaultValue the tier's (`standard`: 850/s, burst 100; `premium`: none); without a tier,
   * adaptive (unpaced until the first `ServerBusy`, see {@link ServiceBusTransport.pacing})
   */
  rateLimit?: { creditsPerSecond: number; burst?: number };
  /** Tasks per task message recommended to the engine (`limits.packTasks`). @defaultValue the tier's (100), 1 without a tier */
  packTasks?: number;
  /** Prices for `estimateCost`. @defaultValue {@link SERVICE_BUS_LIST_PRICES} */
  prices?: ServiceBusPrices;
  /**
   * The SDK's retry options. By default the SDK makes one attempt per operation: an SDK retry of
   * a `ServerBusy` comes back unpaced, usually inside the service's 2 s penalty (prolonging it),
   * and hides the refusal from the transport's pacing. The transport itself resends a send
   * refused with `ServerBusy` (after the pause) or failed with a transient error (after a
   * back-off); a failed settlement or lock renewal is left to the caller (the message comes back).
   * Retries configured here come on top of the transport's own.
   * @defaultValue exponential, no retries
   */
  retryOptions?: RetryOptions;
  /** Processing-path name. @defaultValue 'servicebus' */
  name?: string;
  /** The queues' `maxDeliveryCount` setting (informational; the service dead-letters beyond it). @defaultValue 10 */
  maxDeliveryCount?: number;
  /**
   * Messages each queue's receiver keeps buffered ahead of `receive` calls (locked meanwhile; a
   * message whose lock lapses in the buffer is skipped and comes back). @defaultValue the tier's
   * (`standard`: 8, `premium`: 100), 100 without a tier
   */
  prefetchCount?: number;
}

/** A Service Bus {@link Transport} with dead-letter tooling. */
export interface ServiceBusTransport extends Transport {
  readonly limits: TransportLimits;
  listDeadLetters: DeadLetterCapability['listDeadLetters'];
  replayDeadLetters: DeadLetterCapability['replayDeadLetters'];
  /** Renews the message's peek-lock (for the queue's lock duration; `ms` cannot be chosen on Service Bus). */
  extendLock(message: ReceivedMessage, ms?: number): Promise<void>;
  /** True with `priorityLanes`: task messages travel in a queue per priority. */
  readonly priorities: boolean;
  /** Peeks the task queue (each lane's, with `priorityLanes`): resolves when the namespace is reachable and authorised. */
  ping(): Promise<void>;
  /** The queue's `maxDeliveryCount` as configured in the options. */
  readonly maxDeliveryCount: number;
  /** Messages sent, received and settled, lock renewals, scheduled copies and peeks; `ServerBusy` answers that reached the transport. */
  usage(): TransportUsage;
  /**
   * How the transport paces its credit spending now; `undefined` while it does not. With a `tier`
   * of `standard` or a `rateLimit` it always does; with neither, from the first `ServerBusy` until
   * five minutes pass without one.
   */
  pacing(): ServiceBusPacing | undefined;
  /** The cost of `usage` at the tier's list prices. */
  estimateCost(usage: TransportUsage): CostEstimate;
}

/** How a {@link ServiceBusTransport} paces its credit spending (see its `pacing`). */
export interface ServiceBusPacing {
  /**
   * `configured`: the bucket of the `tier` or `rateLimit` option. `adaptive`: without either,
   * engaged by a `ServerBusy` at a rate derived from what the transport was spending when refused.
   */
  readonly mode: 'configured' | 'adaptive';
  /** Credits per second it paces at now (lowered by `ServerBusy` answers, recovering while unrefused). */
  readonly creditsPerSecond: number;
  /** The most it paces at: the configured rate, or (adaptive) a little under the rate last refused. */
  readonly ceiling: number;
}

/** A message that fits no batch, even alone. The engine's claim check keeps bodies under `limits.maxMessageBytes`. */
export class MessageTooLargeError extends SwitchyardError {
  constructor(
    readonly bytes: number,
    readonly maxBytes: number,
  ) {
    super(
      'INVALID_INPUT',
      `message of ${bytes} bytes does not fit a Service Bus batch (link limit ${maxBytes} bytes)`,
    );
    this.name = 'MessageTooLargeError';
  }
}

/** Application properties the driver sets on copies it sends (retries, replays). */
const PROP_ID = 'sy-id';
const PROP_DELIVERIES = 'sy-delivery-count';
/** Application property holding when the transport dead-lettered a message (ISO 8601). */
const DEAD_LETTERED_AT = 'sy-dead-lettered-at';

/** The application property the Azure SDK reads and writes a W3C `traceparent` in. */
export const DIAGNOSTIC_ID = 'Diagnostic-Id';

/** Room kept for the AMQP envelope (annotations, properties, batch framing) under the link limit. */
const ENVELOPE_RESERVE_BYTES = 8 * 1024;
/** Standard tier's link limit, used until the first sender reports the real one. */
const DEFAULT_LINK_BYTES = 256 * 1024;
/** Wait per dead-letter receive while replaying (dead letters stay locked only for the lock duration). */
const DLQ_RECEIVE_WAIT_MS = 250;
const MAX_RECEIVE = 1000;
const DEFAULT_PREFETCH = 100;
/**
 * The fairness window recommended to the engine (`limits.window`): tasks of one stage waiting in
 * a queue, at least 8 messages' worth when packed. A queue drains at thousands of messages a
 * second, so a job behind another waits some 100 ms for 512 of its tasks (`npm run bench --
 * fairness`), and 512 still outlast a release's round trip at that rate. Azure Functions sizes a
 * queue-triggered app by queue length ÷ `maxConcurrentCalls` (16): 512 lets it reach 32
 * instances (README, Limits).
 */
const WINDOW_TASKS = 512;
const WINDOW_MESSAGES = 8;
/** The wait the service's throttling answer asks for ("Please wait 2 seconds and try again"). */
const SERVER_BUSY_WAIT_MS = 2000;
/** Sends refused with `ServerBusy` are tried again this many times (each after the pause). */
const SERVER_BUSY_RESENDS = 3;
/** Sends failed with another retryable error are tried again this many times, backing off exponentially. */
const TRANSIENT_RESENDS = 5;
const TRANSIENT_DELAY_MS = 500;
const TRANSIENT_MAX_DELAY_MS = 10_000;

/** What the driver keeps per received message, out of reach of callers. */
interface Delivery {
  raw: ServiceBusReceivedMessage;
  receiver: ServiceBusReceiver;
  /** The queue it was received from (its lane's, with lanes): retries go back there. */
  queueName: string;
}
const deliveries = new WeakMap<ReceivedMessage, Delivery>();

class ServiceBusReceived implements ReceivedMessage {
  /** Set only for a message of a lane: without lanes the property is absent. */
  declare readonly priority?: Priority;
  constructor(
    readonly queue: QueueKind,
    readonly id: string,
    readonly body: string,
    readonly deliveryCount: number,
    readonly enqueuedAt: Date | undefined,
    priority?: Priority,
  ) {
    if (priority !== undefined) this.priority = priority;
  }
}

/**
 * Creates a Service Bus transport. Connections open lazily on first use; senders and receivers
 * are kept per queue for the transport's lifetime.
 *
 * @example
 * ```ts
 * const transport = serviceBusTransport({ connectionString: process.env.SERVICEBUS_CONNECTION_STRING });
 * ```
 */
export function serviceBusTransport(options: ServiceBusTransportOptions): ServiceBusTransport {
  return new ServiceBusTransportImpl(options);
}

class ServiceBusTransportImpl implements ServiceBusTransport {
  readonly name: string;
  readonly limits: TransportLimits;
  readonly maxDeliveryCount: number;
  readonly priorities: boolean;
  private readonly source: ConnectionSource;
  private readonly queueNames: Record<QueueKind, string>;
  /** The task queue's lane queues, with `priorityLanes`. */
  private readonly taskLanes: Readonly<Record<Priority, string>> | undefined;
  /** The order each task receive reads the lanes in. */
  private readonly schedule = new LaneSchedule();
  private readonly retryOptions: RetryOptions;
  private readonly outcomes = new OutcomeLanes();
  /** Pacing by the `tier` or `rateLimit` option. */
  private readonly bucket: CreditBucket | undefined;
  /** Pacing without a tier or `rateLimit`: none until the first `ServerBusy`. */
  private readonly adaptive: AdaptiveCreditBucket | undefined;
  private readonly configuredRate: number | undefined;
  private readonly prefetch: number;
  private readonly counter = new UsageCounter();
  private readonly tier: ServiceBusTierName | undefined;
  private readonly messagingUnits: number;
  private readonly prices: ServiceBusPrices;
  /** First and latest operation, for Premium's unit-hour estimate. */
  private activeSince: number | undefined;
  private activeUntil = 0;
  private client: { value: string | undefined; client: Promise<ServiceBusClient> } | undefined;
  private senders = new Map<string, ServiceBusSender>();
  /** One prefetching receiver per queue name (each lane's its own), opened on first receive. */
  private pumps = new Map<string, ReceivePump>();
  /** The receivers `ping` peeks with, per queue name. */
  private pingReceivers = new Map<string, ServiceBusReceiver>();
  private closed = false;

  constructor(options: ServiceBusTransportOptions) {
    this.name = options.name ?? 'servicebus';
    this.maxDeliveryCount = options.maxDeliveryCount ?? 10;
    this.source = clientSource(options);
    this.queueNames = queueNamesOf(options.queues);
    const maxBatchMessages = options.maxBatchMessages ?? 100;
    const sendConcurrency = options.sendConcurrency ?? 8;
    const issues: FieldIssue[] = [];
    this.priorities = options.priorityLanes === true;
    if (this.priorities) checkLaneNames(this.queueNames, issues);
    this.taskLanes = this.priorities ? laneQueueNames(this.queueNames.task) : undefined;
    if (!Number.isInteger(maxBatchMessages) || maxBatchMessages < 1 || maxBatchMessages > 4500) {
      issues.push({ path: 'maxBatchMessages', message: 'must be an integer from 1 to 4500' });
    }
    if (!Number.isInteger(sendConcurrency) || sendConcurrency < 1)
      issues.push({ path: 'sendConcurrency', message: 'must be a positive integer' });
    if (options.rateLimit && !(options.rateLimit.creditsPerSecond > 0)) {
      issues.push({ path: 'rateLimit.creditsPerSecond', message: 'must be positive' });
    }
    if (options.tier !== undefined && options.tier !== 'standard' && options.tier !== 'premium') {
      issues.push({ path: 'tier', message: `must be 'standard' or 'premium'` });
    }
    const packTasks =
      options.packTasks ?? (options.tier ? serviceBusTierDefaults(options.tier).packTasks : 1);
    if (!Number.isInteger(packTasks) || packTasks < 1 || packTasks > MAX_PACKED_TASKS) {
      issues.push({
        path: 'packTasks',
        message: `must be an integer from 1 to ${MAX_PACKED_TASKS}`,
      });
    }
    if (issues.length > 0) throw new ValidationError('invalid serviceBusTransport options', issues);
    const maxMessageBytes = DEFAULT_LINK_BYTES - ENVELOPE_RESERVE_BYTES;
    this.limits = {
      maxMessageBytes,
      maxBatchMessages,
      maxBatchBytes: maxMessageBytes,
      sendConcurrency,
      maxReceiveMessages: MAX_RECEIVE,
      ...(packTasks > 1 ? { packTasks } : {}),
      window: Math.max(WINDOW_TASKS, WINDOW_MESSAGES * packTasks),
    };
    this.tier = options.tier;
    this.messagingUnits = options.messagingUnits ?? 1;
    this.prices = options.prices ?? SERVICE_BUS_LIST_PRICES;
    const tierDefaults = options.tier ? serviceBusTierDefaults(options.tier) : undefined;
    this.prefetch = Math.max(
      1,
      options.prefetchCount ?? tierDefaults?.prefetchCount ?? DEFAULT_PREFETCH,
    );
    const rateLimit = options.rateLimit ?? tierDefaults?.rateLimit;
    this.configuredRate = rateLimit?.creditsPerSecond;
    this.bucket = rateLimit
      ? new CreditBucket({
          perSecond: rateLimit.creditsPerSecond,
          ...(rateLimit.burst === undefined ? {} : { burst: rateLimit.burst }),
        })
      : undefined;
    this.adaptive = rateLimit || options.tier ? undefined : new AdaptiveCreditBucket();
    this.retryOptions = {
      mode: RetryMode.Exponential,
      maxRetries: 0,
      retryDelayInMs: 500,
      maxRetryDelayInMs: 10_000,
      ...options.retryOptions,
    };
  }

  // ---------------------------------------------------------------- connection

  /**
   * Runs `op` on the current client. With a secret-sourced connection string this goes through
   * core's `withSecretRotation`: on `UnauthorizedAccess` the secret is re-read once (it may have
   * been rotated) and, if it changed, the client is rebuilt before the retry.
   */
  private async withClient<T>(op: (client: ServiceBusClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new SwitchyardError('CLOSED', 'Service Bus transport is closed');
    const source = this.source;
    if (source.kind !== 'secret') return op(await this.clientFor(undefined));
    return withSecretRotation(
      source.secret,
      async (value) => op(await this.clientFor(value)),
      isAuthError,
    );
  }

  /** The client for `connectionString` (`undefined`: the static source); a changed secret value replaces it. */
  private async clientFor(connectionString: string | undefined): Promise<ServiceBusClient> {
    if (this.closed) throw new SwitchyardError('CLOSED', 'Service Bus transport is closed');
    if (this.client && this.client.value === connectionString) return this.client.client;
    const previous = this.client;
    const client = this.createClient(connectionString);
    this.client = { value: connectionString, client };
    if (previous) {
      // Links of the old client are useless now; received messages keep their receiver reference
      // and settle through the management link fallback (or come back when their lock expires).
      const links = [
        ...this.senders.values(),
        ...this.pumps.values(),
        ...this.pingReceivers.values(),
      ];
      this.senders = new Map();
      this.pumps = new Map();
      this.pingReceivers = new Map();
      void closeQuietly(links).then(async () => closeQuietly([await previous.client]));
    }
    return client;
  }

  private async createClient(connectionString: string | undefined): Promise<ServiceBusClient> {
    const clientOptions = { retryOptions: this.retryOptions };
    if (this.source.kind === 'endpoint') {
      return new ServiceBusClient(
        this.source.endpoint,
        this.source.credential ?? azureCredential(),
        clientOptions,
      );
    }
    const value =
      connectionString ?? (this.source.kind === 'connectionString' ? this.source.value : '');
    try {
      return new ServiceBusClient(value, clientOptions);
    } catch (err) {
      // The SDK's parse errors may quote the string: report the failure, never the value.
      throw new SwitchyardError('CONFIG_ERROR', 'the Service Bus connection string is malformed', {
        cause: new Error(redactSecrets(err instanceof Error ? err.message : String(err), [value])),
      });
    }
  }

  /**
   * Receives, settlements and renewals are not retried here (the caller's loop does that), but an
   * authorisation failure on them re-reads a secret-sourced connection string, so the caller's
   * next attempt runs on a client built from the rotated value.
   */
  private async noteAuthFailure(err: unknown): Promise<void> {
    if (this.source.kind !== 'secret' || !isAuthError(err) || this.closed) return;
    await this.source.secret.refresh().catch(() => undefined);
  }

  private sender(client: ServiceBusClient, queueName: string): ServiceBusSender {
    let sender = this.senders.get(queueName);
    if (!sender) {
      sender = client.createSender(queueName);
      this.senders.set(queueName, sender);
    }
    return sender;
  }

  private pump(client: ServiceBusClient, queueName: string): ReceivePump {
    let pump = this.pumps.get(queueName);
    if (!pump) {
      const receiver = client.createReceiver(queueName, {
        receiveMode: 'peekLock',
        skipParsingBodyAsJson: true,
        // No SDK auto-renewal: an unsettled message must come back when its lock expires (a crashed
        // or stuck handler); the engine renews explicitly through extendLock while a task runs.
        maxAutoLockRenewalDurationInMs: 0,
      });
      pump = new ReceivePump(receiver, this.prefetch, (err) =>
        this.noteIfServerBusy(err, Date.now()),
      );
      this.pumps.set(queueName, pump);
    }
    return pump;
  }

  /** Adopts the link's real size limit (256 KB Standard, 1 MB Premium) once a sender reports it. */
  private adoptLinkLimit(batch: ServiceBusMessageBatch): void {
    const max = batch.maxSizeInBytes - ENVELOPE_RESERVE_BYTES;
    if (max > 16 * 1024 && max !== this.limits.maxMessageBytes) {
      this.limits.maxMessageBytes = max;
      this.limits.maxBatchBytes = max;
    }
  }

  // ---------------------------------------------------------------- send

  async send(
    queue: QueueKind,
    messages: readonly OutgoingMessage[],
    options: { abortSignal?: AbortSignal } = {},
  ): Promise<void> {
    if (messages.length === 0) return;
    const groups = [...this.byQueue(queue, messages)];
    if (groups.length === 1) {
      const [queueName, group] = groups[0]!;
      return this.sendTo(queueName, group, options.abortSignal);
    }
    // One send per lane, at once; the call fails if any did (the caller re-sends it all).
    const results = await Promise.allSettled(
      groups.map(([queueName, group]) => this.sendTo(queueName, group, options.abortSignal)),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** The messages of one `send` by the queue they go to: a task message's lane, with lanes. */
  private byQueue(
    queue: QueueKind,
    messages: readonly OutgoingMessage[],
  ): Map<string, readonly OutgoingMessage[]> {
    const lanes = queue === 'task' ? this.taskLanes : undefined;
    if (!lanes) return new Map([[this.queueNames[queue], messages]]);
    // Checked before anything is sent: a lane that does not exist must not fail half a batch.
    const issues = messages.flatMap((m, i) => priorityIssue(m, i) ?? []);
    if (issues.length > 0)
      throw new ValidationError(
        `serviceBusTransport send rejected: ${issues[0]!.path} ${issues[0]!.message}`,
        issues,
      );
    return new Map(
      [...byPriority(messages)].map(([priority, group]) => [lanes[priority], group] as const),
    );
  }

  /** Sends to one queue, in as few batches as limits allow, resending while throttled. */
  private async sendTo(
    queueName: string,
    messages: readonly OutgoingMessage[],
    abortSignal: AbortSignal | undefined,
  ): Promise<void> {
    const outgoing = messages.map(toServiceBusMessage);
    let refused = 0;
    let failed = 0;
    for (;;) {
      const paced = this.pace(messages.length, abortSignal);
      if (paced) await paced;
      const startedAt = Date.now();
      try {
        await this.withClient((client) =>
          this.sendBatches(this.sender(client, queueName), outgoing, abortSignal),
        );
        this.count('send', messages.length);
        return;
      } catch (err) {
        // Resent whole: receivers de-duplicate a batch the service took before another failed.
        if (isServerBusy(err)) {
          // Throttled: wait as the service asks, slower, and resend. Paced, the bucket's next
          // `take` waits (it was paused); unpaced (`tier: 'premium'`), wait here.
          this.noteThrottled(startedAt);
          if (refused++ < SERVER_BUSY_RESENDS && !abortSignal?.aborted) {
            if (!this.bucket && !this.adaptive) await sleep(SERVER_BUSY_WAIT_MS, abortSignal);
            continue;
          }
        } else if (isTransient(err) && failed < TRANSIENT_RESENDS && !abortSignal?.aborted) {
          await sleep(backoffMs(failed++), abortSignal);
          continue;
        }
        throw backendError(`send to queue '${queueName}' failed`, err);
      }
    }
  }

  /** Counts billable operations and the span they were spent in. */
  private count(kind: string, n = 1): void {
    const now = Date.now();
    this.activeSince ??= now;
    this.activeUntil = now;
    this.counter.add(kind, n);
    this.adaptive?.spent(n, now);
  }

  /**
   * Takes `n` credits before (for receives, after) the operations they pay for: waits for them
   * while pacing; otherwise returns `undefined`, so the unpaced path awaits nothing.
   */
  private pace(n: number, signal?: AbortSignal): Promise<void> | undefined {
    return this.bucket ? this.bucket.take(n, signal) : this.adaptive?.take(n, signal);
  }

  /**
   * `count` operations begun at `startedAt` were answered `ServerBusy`: count them, and pause and
   * slow the pacing as asked (engaging it, without a tier or `rateLimit`).
   */
  private noteThrottled(startedAt: number, count = 1): void {
    this.counter.throttled(count);
    const now = Date.now();
    this.bucket?.throttled(SERVER_BUSY_WAIT_MS, now);
    this.adaptive?.throttled(SERVER_BUSY_WAIT_MS, now, startedAt);
  }

  /** Notes `err` if it is a `ServerBusy` answer to an operation begun at `startedAt`. */
  private noteIfServerBusy(err: unknown, startedAt: number): void {
    if (isServerBusy(err)) this.noteThrottled(startedAt);
  }

  usage(): TransportUsage {
    return this.counter.usage();
  }

  pacing(): ServiceBusPacing | undefined {
    if (this.bucket)
      return {
        mode: 'configured',
        creditsPerSecond: this.bucket.perSecond,
        ceiling: this.configuredRate ?? this.bucket.perSecond,
      };
    const state = this.adaptive?.state();
    return state && { mode: 'adaptive', ...state };
  }

  estimateCost(usage: TransportUsage): CostEstimate {
    return serviceBusCost({
      usage,
      tier: this.tier ?? 'standard',
      messagingUnits: this.messagingUnits,
      activeMs: this.activeSince === undefined ? 0 : this.activeUntil - this.activeSince,
      prices: this.prices,
    });
  }

  /** Packs messages into as few SDK batches as bytes and `maxBatchMessages` allow, and sends them concurrently. */
  private async sendBatches(
    sender: ServiceBusSender,
    messages: ServiceBusMessage[],
    abortSignal?: AbortSignal,
  ): Promise<void> {
    const batches: ServiceBusMessageBatch[] = [];
    let batch = await sender.createMessageBatch({ abortSignal });
    this.adoptLinkLimit(batch);
    for (const message of messages) {
      if (batch.count < this.limits.maxBatchMessages && batch.tryAddMessage(message)) continue;
      if (batch.count === 0)
        throw new MessageTooLargeError(byteLength(message), batch.maxSizeInBytes);
      batches.push(batch);
      batch = await sender.createMessageBatch({ abortSignal });
      if (!batch.tryAddMessage(message))
        throw new MessageTooLargeError(byteLength(message), batch.maxSizeInBytes);
    }
    if (batch.count > 0) batches.push(batch);
    if (batches.length === 1) return sender.sendMessages(batches[0]!, { abortSignal });
    const limit = pLimit(this.limits.sendConcurrency);
    await Promise.all(batches.map((b) => limit(() => sender.sendMessages(b, { abortSignal }))));
  }

  // ---------------------------------------------------------------- receive

  async receive(queue: QueueKind, options: ReceiveOptions): Promise<ReceivedMessage[]> {
    if (queue === 'task' && this.taskLanes) return this.receiveLanes(this.taskLanes, options);
    const queueName = this.queueNames[queue];
    const max = Math.max(1, Math.min(options.maxMessages, this.limits.maxReceiveMessages));
    const signal = options.abortSignal;
    if (signal?.aborted) return [];
    let pump: ReceivePump;
    let raw: ServiceBusReceivedMessage[];
    try {
      pump = this.pump(await this.withClient(async (c) => c), queueName);
      raw = await pump.take(max, Math.max(0, options.waitMs ?? 0), signal);
    } catch (err) {
      if (signal?.aborted || this.closed) return [];
      await this.noteAuthFailure(err);
      throw backendError(`receive from queue '${queueName}' failed`, err);
    }
    if (raw.length > 0) {
      this.count('receive', raw.length);
      const paced = this.pace(raw.length);
      if (paced) await paced;
    }
    return raw.map((m) => this.wrap(queue, queueName, pump.receiver, m));
  }

  /** A task receive with lanes: the lanes in the schedule's next order (see `lanes.ts`). */
  private async receiveLanes(
    names: Readonly<Record<Priority, string>>,
    options: ReceiveOptions,
  ): Promise<ReceivedMessage[]> {
    const max = Math.max(1, Math.min(options.maxMessages, this.limits.maxReceiveMessages));
    const signal = options.abortSignal;
    if (signal?.aborted) return [];
    const order = this.schedule.next();
    let got: Awaited<ReturnType<typeof receiveFromLanes>>;
    try {
      const client = await this.withClient(async (c) => c);
      const lanes: LaneReceiver[] = order.map((lane) => ({
        lane,
        queueName: names[lane],
        pump: this.pump(client, names[lane]),
      }));
      got = await receiveFromLanes(lanes, max, Math.max(0, options.waitMs ?? 0), signal);
    } catch (err) {
      if (signal?.aborted || this.closed) return [];
      await this.noteAuthFailure(err);
      throw backendError(`receive from queue '${names.normal}' or its lanes failed`, err);
    }
    if (got.length > 0) {
      this.count('receive', got.length);
      const paced = this.pace(got.length);
      if (paced) await paced;
    }
    return got.map(({ from, raw }) =>
      this.wrap('task', from.queueName, from.pump.receiver, raw, from.lane),
    );
  }

  private wrap(
    queue: QueueKind,
    queueName: string,
    receiver: ServiceBusReceiver,
    raw: ServiceBusReceivedMessage,
    priority?: Priority,
  ): ReceivedMessage {
    const props = raw.applicationProperties ?? {};
    // Only a count this driver could have written: a sender's NaN, Infinity or -5 is ignored.
    const written = props[PROP_DELIVERIES];
    const carried =
      typeof written === 'number' && Number.isSafeInteger(written) && written > 0 ? written : 0;
    // The SDK passes the AMQP header through: 0 on a first delivery (the .NET SDK adds 1; we do too).
    const deliveryCount = carried + (raw.deliveryCount ?? 0) + 1;
    const message = new ServiceBusReceived(
      queue,
      messageIdOf(raw),
      decodeBody(raw.body),
      deliveryCount,
      raw.enqueuedTimeUtc,
      priority,
    );
    deliveries.set(message, { raw, receiver, queueName });
    return message;
  }

  // ---------------------------------------------------------------- settle

  async settle(settlements: readonly Settlement[]): Promise<void> {
    const resolved = settlements.map((s) => {
      const delivery = deliveries.get(s.message);
      if (!delivery)
        throw new ValidationError('message was not received from this Service Bus transport', [
          { path: 'message', message: 'unknown message' },
        ]);
      return { s, delivery };
    });
    if (resolved.length === 0) return;
    const paced = this.pace(resolved.length);
    if (paced) await paced;
    this.count('settle', resolved.length);
    const startedAt = Date.now();
    const results = await Promise.allSettled(
      resolved.map(({ s, delivery }) => this.settleOne(s, delivery)),
    );
    const busy = results.filter((r) => r.status === 'rejected' && isServerBusy(r.reason)).length;
    if (busy > 0) this.noteThrottled(startedAt, busy);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await this.noteAuthFailure(failed.reason);
      throw backendError('settlement failed', failed.reason);
    }
  }

  private async settleOne(s: Settlement, { raw, receiver, queueName }: Delivery): Promise<void> {
    try {
      if (s.action === 'complete') {
        await this.outcomes.submit('complete', () => receiver.completeMessage(raw));
      } else if (s.action === 'retry' && s.delayMs <= 0) {
        await this.outcomes.submit('abandon', () => receiver.abandonMessage(raw));
      } else if (s.action === 'retry') {
        // Real backoff: a scheduled copy (carrying the delivery count so far), then the original
        // completed. A crash in between leaves both; receivers de-duplicate. The copy goes to the
        // queue the message came from, so it stays in its lane.
        const copy = copyOf(raw, s.message.id, s.message.deliveryCount);
        const paced = this.pace(1);
        if (paced) await paced;
        this.count('schedule');
        await this.withClient((client) =>
          this.sender(client, queueName).scheduleMessages(copy, new Date(Date.now() + s.delayMs)),
        );
        await this.outcomes.submit('complete', () => receiver.completeMessage(raw));
      } else {
        const deadLetterReason = truncate(s.reason, 1024);
        const deadLetterErrorDescription = truncate(s.description ?? '', 4096);
        // Dead-letters with different reasons are different outcomes on the wire too.
        await this.outcomes.submit(
          `deadLetter\u0000${deadLetterReason}\u0000${deadLetterErrorDescription}`,
          () =>
            receiver.deadLetterMessage(raw, {
              deadLetterReason,
              deadLetterErrorDescription,
              [DEAD_LETTERED_AT]: new Date().toISOString(),
            }),
        );
      }
    } catch (err) {
      if (isLockLost(err)) return; // the message comes back; the engine de-duplicates
      throw err;
    }
  }

  async extendLock(message: ReceivedMessage, _ms?: number): Promise<void> {
    const delivery = deliveries.get(message);
    if (!delivery)
      throw new ValidationError('message was not received from this Service Bus transport');
    const paced = this.pace(1);
    if (paced) await paced;
    this.count('renewLock');
    const startedAt = Date.now();
    try {
      await delivery.receiver.renewMessageLock(delivery.raw);
    } catch (err) {
      this.noteIfServerBusy(err, startedAt);
      await this.noteAuthFailure(err);
      throw backendError('lock renewal failed', err);
    }
  }

  async ping(): Promise<void> {
    const startedAt = Date.now();
    try {
      await this.withClient(async (client) => {
        // Every lane's queue: a lane that was not created would otherwise show only on first use.
        await Promise.all(
          this.queuesOf('task').map(async (queueName) => {
            let receiver = this.pingReceivers.get(queueName);
            if (!receiver) {
              receiver = client.createReceiver(queueName, {
                receiveMode: 'peekLock',
                skipParsingBodyAsJson: true,
              });
              this.pingReceivers.set(queueName, receiver);
            }
            await receiver.peekMessages(1);
            this.count('peek');
          }),
        );
      });
    } catch (err) {
      this.noteIfServerBusy(err, startedAt);
      throw backendError('Service Bus is not reachable', err);
    }
  }

  // ---------------------------------------------------------------- dead letters
  // Service Bus records no dead-letter time: the transport stamps one (application property
  // DEAD_LETTERED_AT) when it dead-letters, and lists it. Messages the broker dead-lettered itself
  // (MaxDeliveryCountExceeded) carry none.

  /** The queues behind a queue kind: with lanes, the task queue's lanes, highest first. */
  private queuesOf(queue: QueueKind): string[] {
    if (queue === 'task' && this.taskLanes)
      return laneQueues(this.queueNames.task).map((l) => l.queueName);
    return [this.queueNames[queue]];
  }

  async listDeadLetters(queue: QueueKind, options: { limit?: number } = {}): Promise<DeadLetter[]> {
    const limit = options.limit ?? 100;
    let queueName = this.queueNames[queue];
    const startedAt = Date.now();
    try {
      return await this.withClient(async (client) => {
        // Lane by lane, highest first, until `limit` in all. Ids are message ids, as on one
        // queue: a message keeps its lane for life, so lanes add no id shared by two letters.
        const out: DeadLetter[] = [];
        for (queueName of this.queuesOf(queue)) {
          if (out.length >= limit) break;
          out.push(...(await peekDeadLetters(client, queue, queueName, limit - out.length)));
        }
        return out;
      });
    } catch (err) {
      this.noteIfServerBusy(err, startedAt);
      throw backendError(`listing dead letters of '${queueName}' failed`, err);
    }
  }

  async replayDeadLetters(queue: QueueKind, options: ReplayOptions = {}): Promise<number> {
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const wanted = options.ids ? new Set(options.ids) : undefined;
    let queueName = this.queueNames[queue];
    const startedAt = Date.now();
    try {
      return await this.withClient(async (client) => {
        const dlqs = this.queuesOf(queue).map((name) => ({
          queueName: name,
          dlq: client.createReceiver(name, {
            subQueueType: 'deadLetter',
            skipParsingBodyAsJson: true,
            maxAutoLockRenewalDurationInMs: 0,
          }),
        }));
        try {
          // The pass moves the dead letters there now, in every lane (up to `limit` in all),
          // named by sequence number (a dead letter keeps its own; a copy that fails again comes
          // back under a new one). All lanes are looked at before any moves.
          const snapshots: Set<string>[] = [];
          let room = limit;
          for (const d of dlqs) {
            queueName = d.queueName;
            const found = await snapshotDeadLetters(d.dlq, room, wanted);
            room -= found.size;
            snapshots.push(found);
          }
          let replayed = 0;
          for (const [i, d] of dlqs.entries()) {
            queueName = d.queueName;
            replayed += await this.replayQueue(client, queue, d, snapshots[i]!, options.accept);
          }
          return replayed;
        } finally {
          await closeQuietly(dlqs.map((d) => d.dlq));
        }
      });
    } catch (err) {
      this.noteIfServerBusy(err, startedAt);
      throw backendError(`replaying dead letters of '${queueName}' failed`, err);
    }
  }

  /** Moves the `pending` dead letters of one queue back to that queue (its lane, with lanes). */
  private async replayQueue(
    client: ServiceBusClient,
    queue: QueueKind,
    { queueName, dlq }: { queueName: string; dlq: ServiceBusReceiver },
    pending: Set<string>,
    accept: ReplayOptions['accept'],
  ): Promise<number> {
    // Received but not moved (dead-lettered during the pass, or refused): held locked so the
    // next receive reaches further, released at the end.
    const held: ServiceBusReceivedMessage[] = [];
    try {
      const seen = new Set<string>();
      let replayed = 0;
      while (pending.size > 0) {
        // Short waits: the dead letters stay locked only for the queue's lock duration.
        const batch = await dlq.receiveMessages(100, { maxWaitTimeInMs: DLQ_RECEIVE_WAIT_MS });
        if (batch.length === 0) break;
        const take: ServiceBusReceivedMessage[] = [];
        let fresh = false;
        for (const m of batch) {
          const key = String(m.sequenceNumber);
          if (pending.delete(key)) take.push(m);
          else {
            if (!seen.has(key)) fresh = true;
            seen.add(key);
            held.push(m);
          }
        }
        // Only messages seen before: the rest of the snapshot is out of reach (moved by another pass).
        if (take.length === 0 && !fresh) break;
        if (take.length === 0) continue;
        const verdicts = accept
          ? await accept(take.map((m) => deadLetterOf(queue, m)))
          : take.map(() => true);
        const move = take.filter((_, i) => verdicts[i] === true);
        held.push(...take.filter((_, i) => verdicts[i] !== true));
        if (move.length === 0) continue;
        // Send copies first, then remove the dead letters: a crash in between duplicates, never loses.
        await this.sendBatches(
          this.sender(client, queueName),
          move.map((m) => ({
            ...copyOf(m, messageIdOf(m), 0),
            messageId: `${messageIdOf(m)}:replay:${Date.now()}`,
          })),
        );
        await Promise.all(
          move.map((m) =>
            this.outcomes
              .submit('complete', () => dlq.completeMessage(m))
              // Lock lost: the copy is out; the dead letter stays and a later replay duplicates it.
              .catch((err: unknown) => {
                if (!isLockLost(err)) throw err;
              }),
          ),
        );
        replayed += move.length;
      }
      return replayed;
    } finally {
      await Promise.allSettled(
        held.map((m) => this.outcomes.submit('abandon', () => dlq.abandonMessage(m))),
      );
    }
  }

  // ---------------------------------------------------------------- close

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const client = await this.client?.client.catch(() => undefined);
    await closeQuietly([
      ...this.senders.values(),
      ...this.pumps.values(),
      ...this.pingReceivers.values(),
    ]);
    this.senders.clear();
    this.pumps.clear();
    this.pingReceivers.clear();
    if (client) await closeQuietly([client]);
  }
}

// ------------------------------------------------------------------ helpers

function clientSource(options: ServiceBusTransportOptions): ConnectionSource {
  const issues: FieldIssue[] = [];
  const source = resolveConnectionSource(
    options,
    { name: 'fullyQualifiedNamespace', value: options.fullyQualifiedNamespace },
    issues,
  );
  if (!source) {
    const first = issues[0]!;
    throw new ValidationError(`serviceBusTransport: ${first.path} ${first.message}`, issues);
  }
  return source;
}

function toServiceBusMessage(m: OutgoingMessage): ServiceBusMessage {
  // Raw UTF-8 in a data section: what Functions and other SDKs read as the body, with no JSON quoting.
  const message: ServiceBusMessage = { body: Buffer.from(m.body, 'utf8') };
  // Always an id: the SDK tracks locks by message id, and duplicate detection needs one.
  message.messageId = m.messageId ?? randomUUID();
  if (m.delayMs !== undefined && m.delayMs > 0)
    message.scheduledEnqueueTimeUtc = new Date(Date.now() + m.delayMs);
  // The Azure SDK's own trace header: Application Insights and other Service Bus tooling link
  // the message to the trace the envelope's `traceparent` names.
  if (m.traceparent !== undefined)
    message.applicationProperties = { [DIAGNOSTIC_ID]: m.traceparent };
  return message;
}

/** A copy of a received message for a retry or replay, keeping its stable id and delivery count. */
function copyOf(
  raw: ServiceBusReceivedMessage,
  id: string,
  deliveryCount: number,
): ServiceBusMessage {
  // A replayed message is not dead-lettered any more: its old dead-letter time is dropped.
  const {
    [PROP_ID]: _id,
    [PROP_DELIVERIES]: _count,
    [DEAD_LETTERED_AT]: _deadLetteredAt,
    ...props
  } = raw.applicationProperties ?? {};
  const applicationProperties: Record<string, number | boolean | string | Date | null> = {
    ...props,
    [PROP_ID]: id,
  };
  if (deliveryCount > 0) applicationProperties[PROP_DELIVERIES] = deliveryCount;
  const copy: ServiceBusMessage = {
    // The bytes as received, whatever they are: decoding them as UTF-8 would replace invalid
    // sequences by U+FFFD and change the body.
    body: raw.body instanceof Uint8Array ? Buffer.from(raw.body) : raw.body,
    // Distinct per attempt so duplicate detection (if enabled) does not drop the copy.
    messageId: deliveryCount > 0 ? `${id}:${deliveryCount}` : id,
    applicationProperties,
  };
  if (raw.contentType !== undefined) copy.contentType = raw.contentType;
  if (raw.subject !== undefined) copy.subject = raw.subject;
  return copy;
}

/** A dead-lettered message as the transport lists it. */
function deadLetterOf(queue: QueueKind, m: ServiceBusReceivedMessage): DeadLetter {
  return {
    queue,
    id: messageIdOf(m),
    body: decodeBody(m.body),
    reason: m.deadLetterReason ?? '',
    ...(m.deadLetterErrorDescription ? { description: m.deadLetterErrorDescription } : {}),
    ...deadLetteredAt(m.applicationProperties?.[DEAD_LETTERED_AT]),
  };
}

/** Up to `limit` dead letters of one queue, peeked without locking them. */
async function peekDeadLetters(
  client: ServiceBusClient,
  queue: QueueKind,
  queueName: string,
  limit: number,
): Promise<DeadLetter[]> {
  // The SDK keeps the peek cursor per entity on its shared management client, not per receiver:
  // without an explicit fromSequenceNumber a second listing starts where the previous one ended
  // and misses everything before.
  let from = Long.ZERO;
  const dlq = client.createReceiver(queueName, {
    subQueueType: 'deadLetter',
    skipParsingBodyAsJson: true,
    maxAutoLockRenewalDurationInMs: 0,
  });
  try {
    const out: DeadLetter[] = [];
    while (out.length < limit) {
      const page = await dlq.peekMessages(Math.min(100, limit - out.length), {
        fromSequenceNumber: from,
      });
      if (page.length === 0) break;
      for (const m of page) {
        if (m.sequenceNumber?.gte(from)) from = m.sequenceNumber.add(1);
        out.push(deadLetterOf(queue, m));
      }
    }
    return out;
  } finally {
    await closeQuietly([dlq]);
  }
}

/**
 * Sequence numbers of the dead letters a replay pass moves: those there now (up to `limit`, and
 * only `wanted` ids if given), peeked without locking them.
 */
async function snapshotDeadLetters(
  dlq: ServiceBusReceiver,
  limit: number,
  wanted: ReadonlySet<string> | undefined,
): Promise<Set<string>> {
  const found = new Set<string>();
  // From sequence number 0 explicitly: the SDK keeps a peek cursor per entity (see listDeadLetters).
  let from = Long.ZERO;
  while (found.size < limit) {
    const page = await dlq.peekMessages(100, { fromSequenceNumber: from });
    if (page.length === 0) break;
    for (const m of page) {
      if (m.sequenceNumber?.gte(from)) from = m.sequenceNumber.add(1);
      if (found.size < limit && (!wanted || wanted.has(messageIdOf(m))))
        found.add(String(m.sequenceNumber));
    }
  }
  return found;
}

function messageIdOf(raw: ServiceBusReceivedMessage): string {
  const carried = raw.applicationProperties?.[PROP_ID];
  if (typeof carried === 'string') return carried;
  if (typeof raw.messageId === 'string' || typeof raw.messageId === 'number')
    return String(raw.messageId);
  if (raw.messageId !== undefined) return String(raw.messageId);
  return String(raw.sequenceNumber ?? '');
}

/** Bodies arrive as raw bytes (`skipParsingBodyAsJson`); other senders may use a string or value section. */
function decodeBody(body: unknown): string {
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array)
    return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  if (body === undefined || body === null) return '';
  return JSON.stringify(body);
}

function byteLength(m: ServiceBusMessage): number {
  return m.body instanceof Uint8Array ? m.body.byteLength : Buffer.byteLength(String(m.body));
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

function errorCode(err: unknown): string | undefined {
  // The SDK's retry gives up with an AggregateError of every attempt's error: the last one counts.
  if (err instanceof AggregateError && err.errors.length > 0) return errorCode(err.errors.at(-1));
  if (isServiceBusError(err)) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function isLockLost(err: unknown): boolean {
  const code = errorCode(err);
  return (
    code === 'MessageLockLost' ||
    code === 'SessionLockLost' ||
    code === 'MessageLockLostError' ||
    code === 'SessionLockLostError'
  );
}

function isServerBusy(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'ServiceBusy' || code === 'ServerBusyError';
}

/**
 * An error the SDK marks retryable (a lost connection, a timeout, an unavailable service), other
 * than `ServerBusy` (paced instead) and an authorisation failure (`withClient` re-reads a rotated
 * secret; retrying a wrong key only delays the error).
 */
function isTransient(err: unknown): boolean {
  if (err instanceof AggregateError && err.errors.length > 0) return isTransient(err.errors.at(-1));
  if (isServerBusy(err) || isAuthError(err)) return false;
  return (err as { retryable?: unknown } | null)?.retryable === true;
}

/** The wait before transient resend `attempt` (0-based): exponential with ±20 % jitter. */
function backoffMs(attempt: number): number {
  const ms = Math.min(TRANSIENT_MAX_DELAY_MS, TRANSIENT_DELAY_MS * 2 ** attempt);
  return ms * (0.8 + Math.random() * 0.4);
}

/** Resolves after `ms`, or at once when `signal` aborts (the next attempt then fails with it). */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return delay(ms, undefined, signal ? { signal } : {}).catch(() => undefined);
}

function isAuthError(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'UnauthorizedAccess' || code === 'UnauthorizedError';
}

/** Wraps an SDK error as a typed Switchyard error (code kept for callers, secrets redacted). */
function backendError(what: string, err: unknown): SwitchyardError {
  if (err instanceof SwitchyardError) return err;
  const code = errorCode(err);
  const detail = redactSecrets(err instanceof Error ? err.message : String(err));
  const typed = isAuthError(err) ? 'AUTH_FAILED' : 'BACKEND_ERROR';
  // SDK errors carry no keys (they may name the namespace); the connection string never reaches them.
  return new SwitchyardError(typed, `Service Bus: ${what}${code ? ` (${code})` : ''}: ${detail}`, {
    cause: err,
  });
}

async function closeQuietly(things: readonly { close(): Promise<void> }[]): Promise<void> {
  await Promise.all(things.map((t) => t.close().catch(() => undefined)));
}

function deadLetteredAt(value: unknown): { deadLetteredAt?: Date } {
  const at =
    value instanceof Date ? value : typeof value === 'string' ? new Date(value) : undefined;
  return at && !Number.isNaN(at.getTime()) ? { deadLetteredAt: at } : {};
}
