/**
 * Message text encoding (base64, like the Azure Functions storage-queue trigger, or plain text)
 * and the poison message format.
 * @module
 */

/** How message bodies are encoded in the queue. */
export type MessageEncoding = 'base64' | 'text';

/** Azure caps a message at 64 KiB of message text. */
export const MAX_MESSAGE_TEXT_BYTES = 65_536;
/** Bytes reserved for the poison header, so any accepted body can still be dead-lettered with its reason. */
export const POISON_HEADER_MAX_BYTES = 1_024;

/** Largest raw body, in UTF-8 bytes, that still fits once encoded (minus the poison header reserve). */
export function maxBodyBytes(encoding: MessageEncoding): number {
  // base64 turns every 3 bytes into 4 characters: 65,536 → 49,152 raw bytes.
  const raw = encoding === 'base64' ? (MAX_MESSAGE_TEXT_BYTES / 4) * 3 : MAX_MESSAGE_TEXT_BYTES;
  return raw - POISON_HEADER_MAX_BYTES;
}

/** Encodes a body as message text. */
export function encodeBody(body: string, encoding: MessageEncoding): string {
  return encoding === 'base64' ? Buffer.from(body, 'utf8').toString('base64') : body;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes message text. Text that is not valid base64 of valid UTF-8 is returned as is with
 * `raw: true`, so the engine sees it and can dead-letter it as malformed rather than the
 * transport failing the whole receive.
 */
export function decodeText(
  text: string,
  encoding: MessageEncoding,
): { body: string; raw: boolean } {
  if (encoding === 'text') return { body: text, raw: false };
  if (!BASE64.test(text)) return { body: text, raw: true };
  try {
    return { body: utf8.decode(Buffer.from(text, 'base64')), raw: false };
  } catch {
    return { body: text, raw: true };
  }
}

/** First characters of a poison message written by this driver. */
export const POISON_MARKER = '#switchyard-poison ';

/** The header of a poison message, as written by this driver. */
export interface PoisonHeader {
  /** Format version. */
  v: 1;
  reason: string;
  description?: string;
  /** The queue kind and storage queue the message was dead-lettered from. */
  kind: 'stage' | 'task';
  queue: string;
  /** The original message's id and dequeue count when it was dead-lettered. */
  messageId: string;
  dequeueCount: number;
  deadLetteredAt: string;
  /** True when the original message text was not decodable and is kept verbatim. */
  raw?: boolean;
}

/** A poison message taken apart by {@link parsePoisonMessage}. */
export interface ParsedPoisonMessage {
  /** The original body (decoded), exactly as the failed message carried it. */
  body: string;
  /** Undefined for a message put into the poison queue by something else (e.g. the Functions host). */
  header?: PoisonHeader;
}

function truncate(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : `${text.slice(0, Math.max(0, maxChars - 1))}…`;
}

/**
 * Formats a poison message body: one header line `#switchyard-poison {json}` then the original
 * body verbatim (no escaping, so the size overhead is the header alone). The reason and
 * description are shortened so the header stays within {@link POISON_HEADER_MAX_BYTES}.
 */
export function formatPoisonMessage(header: PoisonHeader, body: string): string {
  let h: PoisonHeader = { ...header, reason: truncate(header.reason, 200) };
  if (h.description !== undefined) h.description = truncate(h.description, 500);
  let line = `${POISON_MARKER}${JSON.stringify(h)}\n`;
  if (Buffer.byteLength(line) > POISON_HEADER_MAX_BYTES) {
    // Multi-byte text can still overflow: drop the description, then shorten the reason.
    const { description: _dropped, ...rest } = h;
    h = { ...rest, reason: truncate(h.reason, 60) };
    line = `${POISON_MARKER}${JSON.stringify(h)}\n`;
  }
  return line + body;
}

/**
 * Splits a (decoded) poison message into its header and original body. Exported for Functions
 * poison handlers reading `<queue>-poison` directly. Text without the header is returned as the
 * body, header undefined.
 */
export function parsePoisonMessage(text: string): ParsedPoisonMessage {
  if (!text.startsWith(POISON_MARKER)) return { body: text };
  const newline = text.indexOf('\n');
  if (newline < 0) return { body: text };
  try {
    const header = JSON.parse(text.slice(POISON_MARKER.length, newline)) as PoisonHeader;
    if (header === null || typeof header !== 'object' || typeof header.reason !== 'string') {
      return { body: text };
    }
    return { header, body: text.slice(newline + 1) };
  } catch {
    return { body: text };
  }
}
