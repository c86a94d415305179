/**
 * The AMQP 1.0 server: connection/link bookkeeping, CBS, `$management` operations, sends and
 * dispositions, routed to {@link Entity} instances.
 * @module
 */
import type { AddressInfo, Server, Socket } from 'node:net';
import rhea from 'rhea';
import {
  type AmqpMessage,
  accepted,
  addressOf,
  asArray,
  asRecord,
  type Connection,
  type Context,
  decodeMessage,
  encodeMessage,
  type IncomingDelivery,
  modified,
  newLockToken,
  type OutgoingDelivery,
  type ReceiverLink,
  rejected,
  released,
  type SenderLink,
  toLockToken,
  toNumber,
  types,
} from './amqp.js';
import {
  type Consumer,
  deliveries,
  Entity,
  type EntitySettings,
  type SettleResult,
} from './entity.js';
import { NamespaceLimits } from './limits.js';
import type { ThrottleStats } from './throttle.js';
import { type ServiceBusTier, type TierOptions, tierProfile } from './tiers.js';

/** Options of {@link startEmulator}. */
export interface EmulatorOptions {
  /** TCP port; 0 or absent picks a free port. */
  port?: number;
  /** Interface to listen on. Default `'127.0.0.1'`. */
  host?: string;
  /** Default peek-lock duration. Default 60 000 ms; override per queue with `configureQueue`. */
  lockDurationMs?: number;
  /** Default deliveries before a message is dead-lettered (`MaxDeliveryCountExceeded`). Default 10. */
  maxDeliveryCount?: number;
  /** `max-message-size` advertised to senders (what `createMessageBatch` fits). Default: the tier's (1 MiB for `unlimited`). */
  maxMessageSizeBytes?: number;
  /**
   * The limits of a real namespace to enforce (see `tiers.ts` for each figure and its source):
   * `standard` throttles at 1,000 credits/s with `com.microsoft:server-busy`, 256 KB messages,
   * 100 messages per batch; `premium` has 1 MB messages and a messaging-unit throughput.
   * @defaultValue 'unlimited'
   */
  tier?: ServiceBusTier;
  /** Overrides of the tier's figures (credits per second, penalty, messaging units). */
  tierOptions?: TierOptions;
}

/** Per-queue settings; unset fields fall back to the emulator defaults. */
export interface QueueSettings {
  lockDurationMs?: number;
  maxDeliveryCount?: number;
}

/** Message counts of one queue. */
export interface QueueStats {
  /** Available for delivery now (includes deferred messages, as Service Bus counts them). */
  active: number;
  /** Waiting for their scheduled enqueue time. */
  scheduled: number;
  /** Delivered in peek-lock mode and not yet settled or expired. */
  locked: number;
  /** In the `<queue>/$DeadLetterQueue` subqueue. */
  deadLettered: number;
}

/** A running emulator. */
export interface ServiceBusEmulator {
  readonly port: number;
  readonly host: string;
  /** `Endpoint=sb://127.0.0.1:<port>;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true` */
  readonly connectionString: string;
  /** Sets a queue's lock duration / max delivery count (creating the queue if needed). Queues are also auto-created on first use. */
  configureQueue(name: string, settings: QueueSettings): void;
  /** Current message counts of a queue (zeros for a queue never used). */
  queueStats(name: string): QueueStats;
  /** The tier profile in force. */
  readonly tier: ServiceBusTier;
  /** Credits spent and operations throttled so far (zeros without throttling). */
  throttleStats(): ThrottleStats;
  /** Closes all client connections and frees the port. */
  close(): Promise<void>;
}

const DEAD_LETTER_SEGMENT = '$deadletterqueue';
const MANAGEMENT_SUFFIX = '/$management';

interface ConnState {
  /** Client receiving links by link name and by target address: where `reply_to` points. */
  readonly replyLinks: Map<string, SenderLink>;
  readonly consumers: Set<Consumer>;
}

interface Reply {
  status: number;
  description?: string;
  condition?: string;
  body?: Record<string, unknown>;
}

const ok = (body: Record<string, unknown> = {}): Reply => ({
  status: 200,
  description: 'OK',
  body,
});
const lockLost = (): Reply => ({
  status: 410,
  condition: 'com.microsoft:message-lock-lost',
  description:
    'The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.',
});

/** Starts an emulator on loopback. Resolves once it is listening. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<ServiceBusEmulator> {
  const host = options.host ?? '127.0.0.1';
  const defaults: EntitySettings = {
    lockDurationMs: options.lockDurationMs ?? 60_000,
    maxDeliveryCount: options.maxDeliveryCount ?? 10,
  };
  const profile = tierProfile(options.tier ?? 'unlimited', options.tierOptions);
  const limits = new NamespaceLimits(profile);
  const maxMessageSize = options.maxMessageSizeBytes ?? profile.maxMessageSizeBytes;
  const queues = new Map<string, Entity>();
  const overrides = new Map<string, QueueSettings>();
  const connStates = new WeakMap<Connection, ConnState>();
  const consumerOf = new WeakMap<SenderLink, Consumer>();
  const sockets = new Set<Socket>();

  function queue(name: string): Entity {
    const key = name.toLowerCase();
    let q = queues.get(key);
    if (!q) {
      let seq = 0;
      const nextSeq = (): number => ++seq;
      const settings = (): EntitySettings => ({ ...defaults, ...overrides.get(key) });
      const dlq = new Entity(`${key}/$DeadLetterQueue`, settings, nextSeq, undefined);
      q = new Entity(key, settings, nextSeq, dlq);
      q.gate = limits.throttle;
      dlq.gate = limits.throttle;
      queues.set(key, q);
    }
    return q;
  }

  /** `queue`, `/queue`, `sb://host/queue/$DeadLetterQueue`, … → the entity. */
  function resolve(address: string): Entity | undefined {
    const path = address
      .replace(/^amqps?:\/\/[^/]+\//i, '')
      .replace(/^sb:\/\/[^/]+\//i, '')
      .replace(/^\/+/, '');
    const [name, sub] = path.split('/');
    if (!name || name.startsWith('$')) return undefined;
    const q = queue(name);
    return sub?.toLowerCase() === DEAD_LETTER_SEGMENT ? q.deadLetter : q;
  }

  function connState(conn: Connection): ConnState {
    let s = connStates.get(conn);
    if (!s) {
      s = { replyLinks: new Map(), consumers: new Set() };
      connStates.set(conn, s);
    }
    return s;
  }

  // --- rhea container ----------------------------------------------------------------------

  const container = rhea.create_container({ id: 'switchyard-servicebus-emulator' });
  container.sasl_server_mechanisms.enable_anonymous();
  const on = (event: string, handler: (ctx: Context) => void): void => {
    container.on(event, (ctx: unknown) => handler(ctx as Context));
  };

  on('sender_open', (ctx) => {
    const sender = ctx.sender!;
    const attach = sender.remote.attach ?? {};
    const source = addressOf(attach.source);
    const target = addressOf(attach.target);
    sender.set_source({ address: source });
    sender.set_target({ address: target });
    sender.local.attach.snd_settle_mode = attach.snd_settle_mode ?? 0;
    sender.local.attach.rcv_settle_mode = attach.rcv_settle_mode ?? 0;
    const state = connState(ctx.connection);
    state.replyLinks.set(sender.name, sender);
    if (target) state.replyLinks.set(target, sender);
    if (source === '$cbs' || source.endsWith('$management')) return;
    const entity = resolve(source);
    if (!entity) {
      sender.close({ condition: 'amqp:not-found', description: `No entity at '${source}'.` });
      return;
    }
    const consumer: Consumer = {
      sender,
      entity,
      receiveAndDelete: attach.snd_settle_mode === 1,
      issued: 0,
    };
    consumerOf.set(sender, consumer);
    state.consumers.add(consumer);
    entity.addConsumer(consumer);
  });

  on('receiver_open', (ctx) => {
    const receiver = ctx.receiver!;
    const attach = receiver.remote.attach ?? {};
    receiver.set_source({ address: addressOf(attach.source) });
    receiver.set_target({ address: addressOf(attach.target) });
    receiver.local.attach.snd_settle_mode = attach.snd_settle_mode ?? 0;
    receiver.local.attach.rcv_settle_mode = attach.rcv_settle_mode ?? 0;
    // Without a positive max-message-size, the SDK's createMessageBatch() fits nothing.
    receiver.local.attach.max_message_size = maxMessageSize;
  });

  function dropConsumer(sender: SenderLink | undefined): void {
    if (!sender) return;
    const c = consumerOf.get(sender);
    if (!c) return;
    consumerOf.delete(sender);
    c.entity.removeConsumer(sender);
  }
  on('sender_close', (ctx) => dropConsumer(ctx.sender));
  for (const event of ['disconnected', 'connection_close']) {
    on(event, (ctx) => {
      const s = connStates.get(ctx.connection);
      if (!s) return;
      for (const c of s.consumers) dropConsumer(c.sender);
      s.consumers.clear();
      s.replyLinks.clear();
    });
  }

  on('sendable', (ctx) => consumerOf.get(ctx.sender!)?.entity.pump());
  on('sender_draining', (ctx) => {
    const sender = ctx.sender!;
    consumerOf.get(sender)?.entity.pump();
    // Whatever credit is left after the pump is returned at once: the SDK closes a link whose drain goes unanswered.
    sender.set_drained(true);
  });

  // Dispositions from peek-lock receivers. rhea applies a ranged disposition (first..last) to every
  // delivery in the range, so each one arrives here with the frame's single outcome.
  for (const kind of ['accepted', 'rejected', 'modified', 'released'] as const) {
    on(kind, (ctx) => onOutcome(kind, ctx.delivery as OutgoingDelivery));
  }
  on('settled', () => {});

  function onOutcome(
    kind: 'accepted' | 'rejected' | 'modified' | 'released',
    d: OutgoingDelivery,
  ): void {
    const rec = deliveries.get(d);
    if (!rec) return;
    deliveries.delete(d);
    limits.chargeDisposition(Date.now());
    const { entity, token } = rec;
    const state = d.remote_state ?? {};
    let result: SettleResult;
    let echo: unknown;
    switch (kind) {
      case 'accepted':
        result = entity.complete(token);
        echo = accepted();
        break;
      case 'modified':
        result = state.undeliverable_here
          ? entity.defer(token, state.message_annotations)
          : entity.abandon(token, state.message_annotations);
        echo = modified(state.undeliverable_here === true);
        break;
      case 'rejected': {
        const info = { ...state.error?.info };
        const reason = info.DeadLetterReason;
        const description = info.DeadLetterErrorDescription;
        delete info.DeadLetterReason;
        delete info.DeadLetterErrorDescription;
        result = entity.deadLetterLocked(token, reason, description, info);
        echo = rejected();
        break;
      }
      case 'released':
        result = entity.abandon(token);
        echo = released();
        break;
    }
    d.update(
      true,
      result === 'ok'
        ? echo
        : rejected({
            condition: 'com.microsoft:message-lock-lost',
            description: lockLost().description!,
          }),
    );
    // The client (rcv-settle-mode second) never settles after us; mark it so rhea frees the slot.
    d.remote_settled = true;
  }

  // --- incoming transfers -----------------------------------------------------------------

  on('message', (ctx) => {
    const receiver = ctx.receiver as ReceiverLink;
    const delivery = ctx.delivery as IncomingDelivery;
    const target = addressOf(receiver.remote.attach?.target);
    try {
      if (target === '$cbs') {
        handleCbs(ctx.connection, ctx.message as AmqpMessage);
      } else if (target === '$management' || target.endsWith(MANAGEMENT_SUFFIX)) {
        handleManagement(ctx.connection, target, ctx.message as AmqpMessage);
      } else {
        const entity = resolve(target);
        if (!entity) {
          delivery.reject({
            condition: 'amqp:not-found',
            description: `No entity at '${target}'.`,
          });
          return;
        }
        const now = Date.now();
        const parts =
          ctx.format === 0x80013700 && Buffer.isBuffer(ctx.message)
            ? batchParts(ctx.message)
            : undefined;
        // A single message arrives decoded: its size is re-encoded only under a tier profile, so
        // the unlimited emulator's hot path pays nothing for a check it never fails.
        const bytes = Buffer.isBuffer(ctx.message)
          ? ctx.message.length
          : profile.tier === 'unlimited'
            ? undefined
            : encodeMessage(ctx.message as AmqpMessage).length;
        const refusal = limits.admitSend(parts?.length ?? 1, bytes, now);
        if (refusal) {
          delivery.reject({ condition: refusal.condition, description: refusal.description });
          return;
        }
        if (parts) {
          for (const part of parts) entity.enqueue(decodeMessage(part), now);
        } else if (Buffer.isBuffer(ctx.message)) {
          entity.enqueue(decodeMessage(ctx.message), now);
        } else {
          entity.enqueue(ctx.message as AmqpMessage, now);
        }
        entity.pump(now);
      }
      delivery.accept();
    } catch (err) {
      delivery.reject({ condition: 'amqp:internal-error', description: String(err) });
    }
  });

  function reply(conn: Connection, request: AmqpMessage, response: AmqpMessage): void {
    const to = typeof request.reply_to === 'string' ? request.reply_to : '';
    const link = connStates.get(conn)?.replyLinks.get(to);
    if (!link?.is_open()) return;
    const d = link.send(
      encodeMessage({ ...response, correlation_id: request.message_id }),
      newLockToken().bytes,
      0,
    );
    d.settled = true; // replies are pre-settled: nothing waits on their outcome
  }

  function handleCbs(conn: Connection, request: AmqpMessage): void {
    // Any token is accepted: the emulator does no authorisation.
    reply(conn, request, {
      application_properties: { 'status-code': 202, 'status-description': 'Accepted' },
    });
  }

  function handleManagement(conn: Connection, target: string, request: AmqpMessage): void {
    const entity = resolve(
      target.endsWith(MANAGEMENT_SUFFIX) ? target.slice(0, -MANAGEMENT_SUFFIX.length) : '',
    );
    const operation = request.application_properties?.operation;
    let r: Reply;
    if (!entity) {
      r = { status: 404, condition: 'amqp:not-found', description: `No entity at '${target}'.` };
    } else {
      try {
        const body = asRecord(request.body);
        const refusal = limits.admitManagement(String(operation), body, Date.now());
        r = refusal ?? managementOperation(entity, String(operation), body);
      } catch (err) {
        r = { status: 500, condition: 'amqp:internal-error', description: String(err) };
      }
    }
    const props: Record<string, unknown> = { statusCode: r.status };
    if (r.description) props.statusDescription = r.description;
    if (r.condition) props.errorCondition = r.condition;
    reply(
      conn,
      request,
      r.body ? { application_properties: props, body: r.body } : { application_properties: props },
    );
  }

  function managementOperation(
    entity: Entity,
    operation: string,
    body: Record<string, unknown>,
  ): Reply {
    const now = Date.now();
    switch (operation) {
      case 'com.microsoft:renew-lock': {
        const expirations: Date[] = [];
        for (const raw of asArray(body['lock-tokens'])) {
          const token = toLockToken(raw);
          const until = token === undefined ? undefined : entity.renewLock(token, now);
          if (until === undefined) return lockLost();
          expirations.push(new Date(until));
        }
        return ok({ expirations });
      }
      case 'com.microsoft:schedule-message': {
        const seqs: unknown[] = [];
        for (const entry of asArray(body.messages)) {
          const encoded = asRecord(entry).message;
          if (!Buffer.isBuffer(encoded)) continue;
          seqs.push(types.wrap_long(entity.enqueue(decodeMessage(encoded), now).seq));
        }
        entity.pump(now);
        return ok({ 'sequence-numbers': seqs });
      }
      case 'com.microsoft:cancel-scheduled-message': {
        for (const raw of asArray(body['sequence-numbers'])) {
          const seq = toNumber(raw);
          if (seq !== undefined) entity.cancelScheduled(seq);
        }
        return ok();
      }
      case 'com.microsoft:peek-message': {
        const from = toNumber(body['from-sequence-number']) ?? 0;
        const count = toNumber(body['message-count']) ?? 1;
        const found = [...entity.bySeq.values()]
          .filter((m) => m.seq >= from && m.state !== 'removed')
          .sort((a, b) => a.seq - b.seq)
          .slice(0, count);
        if (found.length === 0) return { status: 204, description: 'No Content' };
        return ok({
          messages: found.map((m) => ({ message: entity.encodeForDelivery(m, undefined) })),
        });
      }
      case 'com.microsoft:update-disposition': {
        const status = body['disposition-status'];
        const reason = body['deadletter-reason'];
        const description = body['deadletter-description'];
        const props = asRecord(body['properties-to-modify']);
        for (const raw of asArray(body['lock-tokens'])) {
          const token = toLockToken(raw);
          if (token === undefined) return lockLost();
          let result: SettleResult;
          if (status === 'completed') result = entity.complete(token);
          else if (status === 'abandoned') result = entity.abandon(token, props);
          else if (status === 'defered') result = entity.defer(token, props);
          else if (status === 'suspended')
            result = entity.deadLetterLocked(token, reason, description, props);
          else
            return {
              status: 400,
              condition: 'amqp:invalid-field',
              description: `Unknown disposition-status '${String(status)}'.`,
            };
          if (result !== 'ok') return lockLost();
        }
        return ok();
      }
      case 'com.microsoft:receive-by-sequence-number': {
        const receiveAndDelete = toNumber(body['receiver-settle-mode']) === 0;
        const messages: Record<string, unknown>[] = [];
        for (const raw of asArray(body['sequence-numbers'])) {
          const seq = toNumber(raw);
          const m = seq === undefined ? undefined : entity.deferredBySeq(seq);
          if (!m) {
            return {
              status: 404,
              condition: 'com.microsoft:message-not-found',
              description: `Deferred message ${String(seq)} not found.`,
            };
          }
          if (receiveAndDelete) {
            messages.push({ message: entity.encodeForDelivery(m, undefined) });
            entity.remove(m);
          } else {
            const { token, bytes } = newLockToken();
            entity.lock(m, token, now);
            messages.push({
              'lock-token': types.wrap_uuid(bytes),
              message: entity.encodeForDelivery(m, m.lockedUntil),
            });
          }
        }
        return ok({ messages });
      }
      default:
        return {
          status: 501,
          condition: 'amqp:not-implemented',
          description: `Operation '${operation}' is not supported by the emulator.`,
        };
    }
  }

  // --- listen ------------------------------------------------------------------------------

  const server = container.listen({
    port: options.port ?? 0,
    host,
    // Nagle + delayed ACK doubles the latency of every small frame exchange.
    tcp_no_delay: true,
    // Room for many unsettled peek-lock deliveries per session (rhea's default is 2,048).
    session_buffer_size: 65_536,
    sender_options: { autosettle: false, treat_modified_as_released: false },
    receiver_options: { autoaccept: false, credit_window: 1000 },
  } as unknown as Parameters<typeof container.listen>[0]) as unknown as Server;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  container.on('error', () => {});
  await new Promise<void>((resolveListen, rejectListen) => {
    server.once('listening', () => resolveListen());
    server.once('error', rejectListen);
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    host,
    connectionString: `Endpoint=sb://${host}:${port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true`,
    configureQueue(name, settings) {
      const key = name.toLowerCase();
      overrides.set(key, { ...overrides.get(key), ...settings });
      queue(name);
    },
    tier: profile.tier,
    throttleStats: () => limits.stats(),
    queueStats(name) {
      const q = queues.get(name.toLowerCase());
      if (!q) return { active: 0, scheduled: 0, locked: 0, deadLettered: 0 };
      const s = q.stats();
      return {
        active: s.active + s.deferred,
        scheduled: s.scheduled,
        locked: s.locked,
        deadLettered: q.deadLetter?.bySeq.size ?? 0,
      };
    },
    async close() {
      for (const q of queues.values()) {
        q.close();
        q.deadLetter?.close();
      }
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/** The encoded messages inside a batch (format 0x80013700): one data section each. */
function batchParts(payload: Buffer): Buffer[] {
  const body = decodeMessage(payload).body as { content?: unknown; multiple?: boolean } | undefined;
  if (!body || body.content === undefined) return [];
  const parts = body.multiple ? asArray(body.content) : [body.content];
  return parts.filter((p): p is Buffer => Buffer.isBuffer(p));
}
