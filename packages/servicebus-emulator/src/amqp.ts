/**
 * Small typed views of the rhea internals the emulator touches. rhea's own typings are loose and
 * omit the fields a server needs (local attach frame, delivery settlement flags, link credit
 * bookkeeping), so everything rhea hands us goes through these narrow interfaces.
 * @module
 */
import { randomUUID } from 'node:crypto';
import rhea from 'rhea';

/** A decoded AMQP message, as rhea's `message.decode` returns it (only the fields we read or set). */
export interface AmqpMessage {
  body?: unknown;
  message_id?: unknown;
  delivery_count?: number;
  message_annotations?: Record<string, unknown>;
  application_properties?: Record<string, unknown>;
  reply_to?: string;
  correlation_id?: unknown;
  [key: string]: unknown;
}

/** The state/outcome rhea attaches to a delivery after the peer's disposition. */
export interface Outcome {
  undeliverable_here?: boolean;
  error?: { condition?: string; description?: string; info?: Record<string, unknown> };
  message_annotations?: Record<string, unknown>;
}

export interface Terminus {
  address?: string;
}

export interface AttachFrame {
  source?: unknown;
  target?: unknown;
  snd_settle_mode?: number;
  rcv_settle_mode?: number;
  max_message_size?: number;
}

/** rhea's outgoing delivery record (server → client transfers). */
export interface OutgoingDelivery {
  id: number;
  settled: boolean;
  remote_settled: boolean;
  remote_state?: Outcome;
  update(settled: boolean, state?: unknown): void;
}

/** rhea's incoming delivery record (client → server transfers). */
export interface IncomingDelivery {
  format?: number;
  accept(): void;
  reject(error?: { condition: string; description?: string }): void;
}

export interface Session {
  outgoing: { available(): number };
}

export interface Link {
  name: string;
  connection: Connection;
  session: Session;
  local: { attach: AttachFrame };
  remote: {
    attach?: {
      source?: Terminus;
      target?: Terminus;
      snd_settle_mode?: number;
      rcv_settle_mode?: number;
    };
  };
  is_open(): boolean;
  is_closed(): boolean;
  set_source(fields: Terminus): void;
  set_target(fields: Terminus): void;
  close(error?: { condition: string; description?: string }): void;
}

/** A server-side sender: the client's receiving link. */
export interface SenderLink extends Link {
  credit: number;
  delivery_count: number;
  send(payload: Buffer, tag: Buffer, format: number): OutgoingDelivery;
  set_drained(drained: boolean): void;
}

/** A server-side receiver: the client's sending link. */
export type ReceiverLink = Link;

export interface Connection {
  close(): void;
}

/** The fields of rhea's event context we use. */
export interface Context {
  connection: Connection;
  sender?: SenderLink;
  receiver?: ReceiverLink;
  delivery?: OutgoingDelivery | IncomingDelivery;
  message?: AmqpMessage | Buffer;
  format?: number;
}

export const types = rhea.types;
export const encodeMessage = (m: AmqpMessage): Buffer => rhea.message.encode(m as rhea.Message);
export const decodeMessage = (b: Buffer): AmqpMessage => rhea.message.decode(b) as AmqpMessage;
/** A described outcome, ready for `delivery.update` (rhea's typings omit `described()`). */
const described = (outcome: unknown): unknown => (outcome as { described(): unknown }).described();
type OutcomeFactory = (fields?: Record<string, unknown>) => unknown;
const outcomes = rhea.message as unknown as Record<
  'accepted' | 'released' | 'modified' | 'rejected',
  OutcomeFactory
>;
export const accepted = (): unknown => described(outcomes.accepted());
export const released = (): unknown => described(outcomes.released());
export const modified = (undeliverableHere: boolean): unknown =>
  described(outcomes.modified({ undeliverable_here: undeliverableHere }));
export const rejected = (error?: { condition: string; description: string }): unknown =>
  described(outcomes.rejected(error ? { error } : {}));

/** A fresh lock token: the canonical string and its 16 bytes in canonical (RFC 4122) order. */
export function newLockToken(): { token: string; bytes: Buffer } {
  const token = randomUUID();
  return { token, bytes: Buffer.from(token.replaceAll('-', ''), 'hex') };
}

/** Canonical uuid string of 16 bytes in RFC 4122 order. */
export function uuidString(bytes: Buffer): string {
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * .NET `Guid.ToByteArray()` order (first three groups little-endian). Service Bus sends lock
 * tokens as delivery tags in this order and the SDK swaps them back (`reorderLockToken`).
 */
export function dotnetGuidBytes(bytes: Buffer): Buffer {
  return Buffer.from([
    bytes[3]!,
    bytes[2]!,
    bytes[1]!,
    bytes[0]!,
    bytes[5]!,
    bytes[4]!,
    bytes[7]!,
    bytes[6]!,
    ...bytes.subarray(8, 16),
  ]);
}

/** Reads an AMQP long that rhea decoded as a number, a bigint, or 8 big-endian bytes. */
export function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (Buffer.isBuffer(value) && value.length === 8) return Number(value.readBigInt64BE(0));
  return undefined;
}

/** Reads an AMQP timestamp (Date or epoch milliseconds). */
export function toMillis(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  return toNumber(value);
}

/** Reads a lock token sent as a uuid (16 bytes, RFC order) or as a string. */
export function toLockToken(value: unknown): string | undefined {
  if (Buffer.isBuffer(value) && value.length === 16) return uuidString(value);
  if (typeof value === 'string') return value.toLowerCase();
  return undefined;
}

export function asArray(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  return value === undefined || value === null ? [] : [value];
}

export function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Buffer.isBuffer(value)
    ? (value as Record<string, unknown>)
    : {};
}

export function addressOf(terminus: unknown): string {
  const address = asRecord(terminus).address;
  return typeof address === 'string' ? address : '';
}
