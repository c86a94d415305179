import type { TokenCredential } from '@azure/core-auth';
import {
  type DequeuedMessageItem,
  type QueueClient,
  QueueServiceClient,
  type StorageRetryOptions,
} from '@azure/storage-queue';
import {
  type CachedSecret,
  cachedSecret,
  type DeadLetter,
  type FieldIssue,
  isSecretRef,
  type OutgoingMessage,
  type QueueKind,
  type ReceivedMessage,
  type ReceiveOptions,
  type ReplayOptions,
  type SecretInput,
  type SecretSource,
  type Settlement,
  SwitchyardError,
  type Transport,
  type TransportLimits,
  ValidationError,
  withSecretRotation,
} from '@switchyard/core';
import pLimit, { type LimitFunction } from 'p-limit';
import {
  decodeText,
  encodeBody,
  formatPoisonMessage,
  MAX_MESSAGE_TEXT_BYTES,
  type MessageEncoding,
  maxBodyBytes,
  type PoisonHeader,
  parsePoisonMessage,
} from './codec.js';
import { backendError, isAbortError, isAuthError, isLostReceipt } from './errors.js';
import { layoutFor, POISON_SUFFIX, throwIfIssues } from './names.js';

/** Options of {@link storageQueueTransport}. Give exactly one of `connectionString`, `secret`, `accountUrl`. */
export interface StorageQueueTransportOptions {
  /** A Storage connection string, or a reference to a secret holding one (rotated on 403). */
  connectionString?: SecretInput;
  /** `https://<account>.queue.core.windows.net`, used with `credential` (Entra ID). */
  accountUrl?: string;
  /** Token credential for `accountUrl`. @defaultValue `azureCredential()` from `@switchyard/azure` (`DefaultAzureCredential`) */
  credential?: TokenCredential;
  /** Name of a secret holding the connection string; shorthand for `connectionString: { secret }`. */
  secret?: string;
  /** Where `secret` / secret references without a source are resolved. @defaultValue `envSecrets()` */
  secrets?: SecretSource;
  /** Queue names. @defaultValue `{ stage: 'sq-jobs', task: 'sq-tasks' }` */
  queues?: { stage?: string; task?: string };
  /** Create missing queues (and their poison queues) on first use. @defaultValue true */
  createQueues?: boolean;
  /** Message text encoding; `base64` matches the Functions storage-queue trigger's default. @defaultValue 'base64' */
  encoding?: MessageEncoding;
  /**
   * Spread task messages over `<task>-0` … `<task>-N-1` (each queue takes ~2,000 msg/s); every
   * receiver polls all of them. 1 (the default) means the single queue `<task>`.
   */
  shards?: number;
  /** Most `sendMessage` calls in flight at once across this transport. @defaultValue 64 */
  sendConcurrency?: number;
  /** A message received more often than this is moved to `<queue>-poison`. @defaultValue 5 */
  maxDequeueCount?: number;
  /** Visibility timeout of received messages when `receive` names none. @defaultValue 30000 */
  visibilityTimeoutMs?: number;
  /** The SDK's retry policy (503/500 throttling is retried by the SDK pipeline). */
  retryOptions?: StorageRetryOptions;
  /** Processing path name. @defaultValue 'storagequeue' */
  name?: string;
}

/** The Storage Queues {@link Transport}, with its optional capabilities all present. */
export type StorageQueueTransport = Transport &
  Required<Pick<Transport, 'listDeadLetters' | 'replayDeadLetters' | 'extendLock' | 'ping'>>;

/** Default of {@link StorageQueueTransportOptions.sendConcurrency}, chosen from `npm run bench -- storagequeue`. */
export const DEFAULT_SEND_CONCURRENCY = 64;
const MAX_RECEIVE = 32;
/** Seconds a replay pass hides the poison messages it pages past (restored at its end). */
const REPLAY_HIDE_S = 300;
const BATCH_MESSAGES = 32;
const MAX_VISIBILITY_S = 7 * 24 * 3600;
/** Poll backoff while idle: 50 ms doubling to 1 s. */
const POLL_MIN_MS = 50;
const POLL_MAX_MS = 1000;

/** Where a received message lives, kept out of the public message object. */
interface Handle {
  storageQueue: string;
  popReceipt: string;
  /** The message text as stored (for poison fidelity). */
  text: string;
  raw: boolean;
}

const handles = new WeakMap<ReceivedMessage, Handle>();

class StorageQueueMessage implements ReceivedMessage {
  constructor(
    readonly queue: QueueKind,
    readonly id: string,
    readonly body: string,
    readonly deliveryCount: number,
    readonly enqueuedAt: Date | undefined,
  ) {}
}

function seconds(ms: number): number {
  return Math.min(MAX_VISIBILITY_S, Math.max(0, Math.ceil(ms / 1000)));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

function isPositiveInt(value: unknown, min = 1): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min;
}

/** Resolves the connection options into one way of building clients. */
type Connection =
  | { kind: 'static'; service: QueueServiceClient }
  | { kind: 'secret'; secret: CachedSecret };

function connectionFrom(
  options: StorageQueueTransportOptions,
  issues: FieldIssue[],
): Connection | undefined {
  const given = [
    options.connectionString !== undefined && 'connectionString',
    options.secret !== undefined && 'secret',
    options.accountUrl !== undefined && 'accountUrl',
  ].filter((x): x is string => typeof x === 'string');
  if (given.length !== 1) {
    issues.push({
      path: given.length === 0 ? 'connectionString' : given.join('/'),
      message:
        given.length === 0
          ? 'give one of connectionString, secret or accountUrl'
          : `give only one of ${given.join(', ')}`,
    });
    return undefined;
  }
  const clientOptions = { retryOptions: options.retryOptions };
  const secretOptions = { defaultSource: options.secrets };
  if (options.secret !== undefined) {
    if (typeof options.secret !== 'string' || options.secret === '') {
      issues.push({ path: 'secret', message: 'must be a non-empty secret name' });
      return undefined;
    }
    return { kind: 'secret', secret: cachedSecret({ secret: options.secret }, secretOptions) };
  }
  if (options.connectionString !== undefined) {
    if (isSecretRef(options.connectionString)) {
      return { kind: 'secret', secret: cachedSecret(options.connectionString, secretOptions) };
    }
    if (typeof options.connectionString !== 'string' || options.connectionString === '') {
      issues.push({
        path: 'connectionString',
        message: 'must be a connection string or { secret }',
      });
      return undefined;
    }
    try {
      return {
        kind: 'static',
        service: QueueServiceClient.fromConnectionString(options.connectionString, clientOptions),
      };
    } catch {
      // Not the SDK's message: it may quote the connection string.
      issues.push({
        path: 'connectionString',
        message: 'is not a valid Storage connection string',
      });
      return undefined;
    }
  }
  const accountUrl = options.accountUrl;
  if (typeof accountUrl !== 'string' || !/^https?:\/\//.test(accountUrl)) {
    issues.push({
      path: 'accountUrl',
      message: 'must be an http(s) URL such as https://<account>.queue.core.windows.net',
    });
    return undefined;
  }
  const credential = options.credential ?? lazyDefaultCredential();
  return { kind: 'static', service: new QueueServiceClient(accountUrl, credential, clientOptions) };
}

/**
 * The shared `DefaultAzureCredential` of `@switchyard/azure` (`azureCredential()`), loaded on the
 * first token request so a connection-string user never loads `@azure/identity`.
 */
function lazyDefaultCredential(): TokenCredential {
  let inner: Promise<TokenCredential> | undefined;
  return {
    async getToken(scopes, options) {
      inner ??= import('@switchyard/azure').then((m) => m.azureCredential());
      return (await inner).getToken(scopes, options);
    },
  };
}

/**
 * A {@link Transport} on Azure Storage Queues.
 *
 * - Bodies are base64-encoded by default, so Azure Functions storage-queue triggers read them.
 * - No batch send exists: `send` runs one `sendMessage` per message, at most `sendConcurrency` at once.
 * - `deliveryCount` is the message's `dequeueCount`; a message dequeued more than `maxDequeueCount`
 *   times is moved to `<queue>-poison` (reason `MaxDequeueCountExceeded`) instead of returned.
 * - Dead-lettered messages go to `<queue>-poison` as `#switchyard-poison {header}\n<original body>`.
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
  const issues: FieldIssue[] = [];
  const encoding = options.encoding ?? 'base64';
  if (encoding !== 'base64' && encoding !== 'text') {
    issues.push({ path: 'encoding', message: `must be 'base64' or 'text'` });
  }
  const shards = options.shards ?? 1;
  if (!isPositiveInt(shards) || shards > 1000) {
    issues.push({ path: 'shards', message: 'must be an integer from 1 to 1000' });
  }
  const sendConcurrency = options.sendConcurrency ?? DEFAULT_SEND_CONCURRENCY;
  if (!isPositiveInt(sendConcurrency)) {
    issues.push({ path: 'sendConcurrency', message: 'must be a positive integer' });
  }
  const maxDequeueCount = options.maxDequeueCount ?? 5;
  if (!isPositiveInt(maxDequeueCount)) {
    issues.push({ path: 'maxDequeueCount', message: 'must be a positive integer' });
  }
  const defaultVisibilityMs = options.visibilityTimeoutMs ?? 30_000;
  if (!isPositiveInt(defaultVisibilityMs, 1000) || defaultVisibilityMs > MAX_VISIBILITY_S * 1000) {
    issues.push({
      path: 'visibilityTimeoutMs',
      message: 'must be an integer from 1000 to 604800000 (7 days)',
    });
  }
  const name = options.name ?? 'storagequeue';
  if (typeof name !== 'string' || name === '')
    issues.push({ path: 'name', message: 'must be a non-empty string' });

  const stageBase = options.queues?.stage ?? 'sq-jobs';
  const taskBase = options.queues?.task ?? 'sq-tasks';
  const layout: Record<QueueKind, string[]> = {
    stage: layoutFor('queues.stage', stageBase, 1, issues),
    task: layoutFor('queues.task', taskBase, isPositiveInt(shards) ? shards : 1, issues),
  };
  const all = [...layout.stage, ...layout.task];
  const allWithPoison = [...all, ...all.map((q) => `${q}${POISON_SUFFIX}`)];
  if (new Set(allWithPoison).size !== allWithPoison.length) {
    issues.push({
      path: 'queues',
      message: 'stage and task queues (with their shard and poison suffixes) must not overlap',
    });
  }
  const connection = issues.length === 0 ? connectionFrom(options, issues) : undefined;
  throwIfIssues(issues);
  if (!connection) throw new ValidationError('invalid storageQueueTransport options');
  const conn: Connection = connection;

  const limits: TransportLimits = {
    maxMessageBytes: maxBodyBytes(encoding),
    // Each message is its own HTTP call; a "batch" only groups calls for the p-limit pool. Small
    // batches, several times the pool in flight: the engine waits for a whole batch, so one slow
    // call (tail latency; seconds on a loaded emulator) must stall a small slice of the work, not
    // drain the pool at every batch boundary.
    maxBatchMessages: BATCH_MESSAGES,
    maxBatchBytes: BATCH_MESSAGES * maxBodyBytes(encoding),
    sendConcurrency: Math.max(2, Math.ceil((sendConcurrency * 4) / BATCH_MESSAGES)),
    maxReceiveMessages: MAX_RECEIVE,
  };

  const sendLimit: LimitFunction = pLimit(sendConcurrency);
  const settleLimit: LimitFunction = pLimit(sendConcurrency);
  const closeController = new AbortController();
  let closed = false;
  let shardCursor = 0;
  const receiveCursor: Record<QueueKind, number> = { stage: 0, task: 0 };

  // Clients per connection-string value: a rotated secret yields a new value and new clients.
  let current:
    | { value: string; service: QueueServiceClient; queues: Map<string, QueueClient> }
    | undefined;
  const staticQueues = new Map<string, QueueClient>();

  function queueClient(
    service: QueueServiceClient,
    cache: Map<string, QueueClient>,
    queue: string,
  ): QueueClient {
    let client = cache.get(queue);
    if (!client) {
      client = service.getQueueClient(queue);
      cache.set(queue, client);
    }
    return client;
  }

  function clientsForValue(value: string): (queue: string) => QueueClient {
    if (current?.value !== value) {
      let service: QueueServiceClient;
      try {
        service = QueueServiceClient.fromConnectionString(value, {
          retryOptions: options.retryOptions,
        });
      } catch {
        throw new SwitchyardError(
          'CONFIG_ERROR',
          'the secret does not hold a valid Storage connection string',
        );
      }
      current = { value, service, queues: new Map() };
    }
    const c = current;
    return (queue) => queueClient(c.service, c.queues, queue);
  }

  /**
   * One refresh per stale value: when many calls in flight fail with the old key, the first
   * refreshes the secret and the rest reuse that lookup instead of each asking the source again.
   */
  let lastRefresh: { from: string; promise: Promise<string> } | undefined;
  function refreshAfter(secret: CachedSecret, stale: string): Promise<string> {
    if (lastRefresh?.from === stale) return lastRefresh.promise;
    if (current && current.value !== stale) return Promise.resolve(current.value);
    const promise = secret.refresh();
    const entry = { from: stale, promise };
    lastRefresh = entry;
    promise.catch(() => {
      if (lastRefresh === entry) lastRefresh = undefined;
    });
    return promise;
  }

  /** Runs one SDK call; with a secret-sourced connection string, a 403 refreshes it once and retries. */
  function runRaw<T>(queue: string, use: (client: QueueClient) => Promise<T>): Promise<T> {
    if (conn.kind === 'static') return use(queueClient(conn.service, staticQueues, queue));
    const secret = conn.secret;
    let used = '';
    const perCall: CachedSecret = {
      name: secret.name,
      get: (o) => secret.get(o),
      refresh: () => refreshAfter(secret, used),
    };
    return withSecretRotation(
      perCall,
      (value) => {
        used = value;
        return use(clientsForValue(value)(queue));
      },
      isAuthError,
    );
  }

  /** {@link runRaw}, with SDK errors wrapped in a redacted {@link SwitchyardError}. */
  function run<T>(
    operation: string,
    queue: string,
    use: (client: QueueClient) => Promise<T>,
  ): Promise<T> {
    return runRaw(queue, use).catch((err: unknown) => {
      throw backendError(operation, queue, err);
    });
  }

  let ensured: Promise<void> | undefined;
  function ensureQueues(): Promise<void> {
    if (options.createQueues === false) return Promise.resolve();
    ensured ??= Promise.all(
      allWithPoison.map((q) => run('createIfNotExists', q, (c) => c.createIfNotExists())),
    ).then(
      () => undefined,
      (err: unknown) => {
        ensured = undefined; // try again next time
        throw err;
      },
    );
    return ensured;
  }

  function assertOpen(): void {
    if (closed) throw new SwitchyardError('CLOSED', 'storageQueueTransport used after close()');
  }

  function handleOf(message: ReceivedMessage): Handle {
    const handle = handles.get(message);
    if (!handle)
      throw new ValidationError('message was not received from this storage queue transport');
    return handle;
  }

  async function sendText(
    queue: string,
    text: string,
    delayMs: number,
    abortSignal?: AbortSignal,
  ): Promise<void> {
    await run('sendMessage', queue, (c) =>
      c.sendMessage(text, {
        visibilityTimeout: seconds(delayMs),
        // Never expire (the default is 7 days): a task message may wait behind a long stage, and a
        // silently expired message would leave its task pending forever. The store, not the queue,
        // decides when work is abandoned (DESIGN invariant 6: nothing may drop work unnoticed).
        messageTimeToLive: -1,
        abortSignal,
      }),
    );
  }

  /** Moves a message to `<queue>-poison` (header + original body), then deletes the original. */
  async function poison(
    kind: QueueKind,
    storageQueue: string,
    item: {
      id: string;
      popReceipt: string;
      text: string;
      raw: boolean;
      body: string;
      dequeueCount: number;
    },
    reason: string,
    description: string | undefined,
  ): Promise<void> {
    const header: PoisonHeader = {
      v: 1,
      reason,
      ...(description === undefined ? {} : { description }),
      kind,
      queue: storageQueue,
      messageId: item.id,
      dequeueCount: item.dequeueCount,
      deadLetteredAt: new Date().toISOString(),
      ...(item.raw ? { raw: true } : {}),
    };
    let text = encodeBody(formatPoisonMessage(header, item.raw ? item.text : item.body), encoding);
    // Only a foreign, near-limit message can overflow; keep it verbatim (reason lost) rather than lose it.
    if (Buffer.byteLength(text) > MAX_MESSAGE_TEXT_BYTES) text = item.text;
    await sendText(`${storageQueue}${POISON_SUFFIX}`, text, 0);
    await deleteQuietly(storageQueue, item.id, item.popReceipt);
  }

  async function deleteQuietly(queue: string, id: string, popReceipt: string): Promise<void> {
    try {
      await runRaw(queue, (c) => c.deleteMessage(id, popReceipt));
    } catch (err) {
      if (!isLostReceipt(err)) throw backendError('deleteMessage', queue, err);
    }
  }

  async function updateVisibility(handle: Handle, id: string, ms: number): Promise<void> {
    try {
      // No message text: only the visibility changes.
      const response = await runRaw(handle.storageQueue, (c) =>
        c.updateMessage(id, handle.popReceipt, undefined, seconds(ms)),
      );
      if (response.popReceipt) handle.popReceipt = response.popReceipt;
    } catch (err) {
      if (!isLostReceipt(err)) throw backendError('updateMessage', handle.storageQueue, err);
    }
  }

  async function receiveFrom(
    kind: QueueKind,
    storageQueue: string,
    max: number,
    visibilityS: number,
    abortSignal: AbortSignal,
  ): Promise<ReceivedMessage[]> {
    const response = await run('receiveMessages', storageQueue, (c) =>
      c.receiveMessages({ numberOfMessages: max, visibilityTimeout: visibilityS, abortSignal }),
    );
    const out: ReceivedMessage[] = [];
    const poisoned: Promise<void>[] = [];
    for (const item of response.receivedMessageItems as DequeuedMessageItem[]) {
      const { body, raw } = decodeText(item.messageText, encoding);
      if (item.dequeueCount > maxDequeueCount) {
        poisoned.push(
          poison(
            kind,
            storageQueue,
            {
              id: item.messageId,
              popReceipt: item.popReceipt,
              text: item.messageText,
              raw,
              body,
              dequeueCount: item.dequeueCount,
            },
            'MaxDequeueCountExceeded',
            `dequeued ${item.dequeueCount} times (maxDequeueCount ${maxDequeueCount})`,
          ),
        );
        continue;
      }
      const message = new StorageQueueMessage(
        kind,
        item.messageId,
        body,
        item.dequeueCount,
        item.insertedOn,
      );
      handles.set(message, {
        storageQueue,
        popReceipt: item.popReceipt,
        text: item.messageText,
        raw,
      });
      out.push(message);
    }
    // A failed move leaves the message in place; it comes back and is moved next time.
    await Promise.allSettled(poisoned);
    return out;
  }

  async function receiveOnce(
    kind: QueueKind,
    max: number,
    visibilityS: number,
    signal: AbortSignal,
  ) {
    const queues = layout[kind];
    const start = receiveCursor[kind]++ % queues.length;
    const got: ReceivedMessage[] = [];
    for (let i = 0; i < queues.length && got.length < max; i++) {
      const queue = queues[(start + i) % queues.length]!;
      got.push(...(await receiveFrom(kind, queue, max - got.length, visibilityS, signal)));
    }
    return got;
  }

  async function settleOne(s: Settlement): Promise<void> {
    const handle = handleOf(s.message);
    const { id } = s.message;
    switch (s.action) {
      case 'complete':
        return deleteQuietly(handle.storageQueue, id, handle.popReceipt);
      case 'retry':
        return updateVisibility(handle, id, s.delayMs);
      case 'deadLetter':
        return poison(
          s.message.queue,
          handle.storageQueue,
          {
            id,
            popReceipt: handle.popReceipt,
            text: handle.text,
            raw: handle.raw,
            body: s.message.body,
            dequeueCount: s.message.deliveryCount,
          },
          s.reason,
          s.description,
        );
    }
  }

  return {
    name,
    limits,

    async send(kind, messages: readonly OutgoingMessage[], sendOptions = {}) {
      assertOpen();
      const tooBig: FieldIssue[] = [];
      messages.forEach((m, i) => {
        const bytes = Buffer.byteLength(m.body, 'utf8');
        if (bytes > limits.maxMessageBytes) {
          tooBig.push({
            path: `messages[${i}].body`,
            message: `is ${bytes} bytes, over maxMessageBytes ${limits.maxMessageBytes}; send larger payloads through the store (the engine's claim check)`,
          });
        }
        if (m.delayMs !== undefined && !(m.delayMs >= 0 && m.delayMs <= MAX_VISIBILITY_S * 1000)) {
          tooBig.push({
            path: `messages[${i}].delayMs`,
            message: 'must be from 0 to 7 days in ms',
          });
        }
      });
      if (tooBig.length > 0) {
        throw new ValidationError(
          `storagequeue send rejected: ${tooBig[0]!.path} ${tooBig[0]!.message}`,
          tooBig,
        );
      }
      if (messages.length === 0) return;
      await ensureQueues();
      const queues = layout[kind];
      const results = await Promise.allSettled(
        messages.map((m) => {
          const queue = queues[shardCursor++ % queues.length]!;
          return sendLimit(() => {
            sendOptions.abortSignal?.throwIfAborted();
            return sendText(
              queue,
              encodeBody(m.body, encoding),
              m.delayMs ?? 0,
              sendOptions.abortSignal,
            );
          });
        }),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        if (sendOptions.abortSignal?.aborted) {
          throw new SwitchyardError('ABORTED', 'storagequeue send aborted');
        }
        throw failed.reason;
      }
    },

    async receive(kind, receiveOptions: ReceiveOptions) {
      assertOpen();
      const asked = Math.floor(receiveOptions.maxMessages);
      const max = Number.isFinite(asked) ? Math.max(1, Math.min(MAX_RECEIVE, asked)) : MAX_RECEIVE;
      const visibilityS = Math.max(
        1,
        seconds(receiveOptions.visibilityTimeoutMs ?? defaultVisibilityMs),
      );
      const deadline = Date.now() + Math.max(0, receiveOptions.waitMs ?? 0);
      const signal = receiveOptions.abortSignal
        ? AbortSignal.any([receiveOptions.abortSignal, closeController.signal])
        : closeController.signal;
      await ensureQueues();
      let backoff = POLL_MIN_MS;
      for (;;) {
        if (signal.aborted) return [];
        try {
          const got = await receiveOnce(kind, max, visibilityS, signal);
          if (got.length > 0) return got;
        } catch (err) {
          // An aborted poll returns nothing; whatever it dequeued reappears after the visibility timeout.
          if (signal.aborted || isAbortError(err)) return [];
          throw err;
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0) return [];
        await sleep(Math.min(backoff, remaining), signal);
        backoff = Math.min(backoff * 2, POLL_MAX_MS);
      }
    },

    async settle(settlements) {
      assertOpen();
      const results = await Promise.allSettled(
        settlements.map((s) => settleLimit(() => settleOne(s))),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },

    async extendLock(message, ms) {
      assertOpen();
      await updateVisibility(handleOf(message), message.id, ms);
    },

    async ping() {
      assertOpen();
      const queue = layout.task[0]!;
      await run('getProperties', queue, (c) => c.getProperties());
    },

    async listDeadLetters(kind, listOptions = {}) {
      assertOpen();
      await ensureQueues();
      // Storage can only peek at the first 32 messages of a queue without receiving them.
      const limit = Math.max(1, Math.min(MAX_RECEIVE, listOptions.limit ?? MAX_RECEIVE));
      const out: DeadLetter[] = [];
      for (const queue of layout[kind]) {
        if (out.length >= limit) break;
        const poisonQueue = `${queue}${POISON_SUFFIX}`;
        const response = await run('peekMessages', poisonQueue, (c) =>
          c.peekMessages({ numberOfMessages: limit - out.length }),
        );
        for (const item of response.peekedMessageItems) {
          out.push(toDeadLetter(kind, item.messageId, item.messageText, item.insertedOn));
        }
      }
      return out;
    },

    async replayDeadLetters(kind, replayOptions: ReplayOptions = {}) {
      assertOpen();
      await ensureQueues();
      let left = replayOptions.limit ?? Number.POSITIVE_INFINITY;
      let replayed = 0;
      for (const queue of layout[kind]) {
        if (left <= 0) break;
        const moved = await replayQueue(kind, queue, left, replayOptions);
        replayed += moved;
        left -= moved;
      }
      return replayed;
    },

    async close() {
      if (closed) return;
      closed = true;
      closeController.abort();
    },
  };

  /**
   * One replay pass over `<queue>-poison`. The pass moves the poison messages there when it
   * starts: one inserted later (by the server's clock, to the second), or the poison copy of a
   * message this pass sent, is dead-lettered during the pass and stays. Messages not moved are
   * hidden while the pass pages past them, and made visible again at its end.
   */
  async function replayQueue(
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
        const response = await run('receiveMessages', poisonQueue, (c) =>
          c.receiveMessages({ numberOfMessages: MAX_RECEIVE, visibilityTimeout: REPLAY_HIDE_S }),
        );
        startedAt ??= response.date ?? new Date();
        const items = response.receivedMessageItems;
        if (items.length === 0) break;
        const offered: { item: (typeof items)[number]; letter: DeadLetter; text: string }[] = [];
        for (const item of items) {
          const { body, raw } = decodeText(item.messageText, encoding);
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
              : encodeBody(parsed.body, encoding);
          offered.push({
            item,
            letter: toDeadLetter(kind, item.messageId, item.messageText, item.insertedOn),
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
          sent.add(await sendReplayCopy(queue, text));
          await deleteQuietly(poisonQueue, item.messageId, item.popReceipt);
          hidden.delete(item.messageId);
          replayed++;
        }
      }
    } finally {
      // Make the messages not moved visible again at once.
      await Promise.allSettled(
        [...hidden].map(([id, popReceipt]) =>
          run('updateMessage', poisonQueue, (c) => c.updateMessage(id, popReceipt, undefined, 0)),
        ),
      );
    }
    return replayed;
  }

  /** Sends a replayed message's text as it was (never expiring, like every send); returns its id. */
  async function sendReplayCopy(queue: string, text: string): Promise<string> {
    const response = await run('sendMessage', queue, (c) =>
      c.sendMessage(text, { messageTimeToLive: -1 }),
    );
    return response.messageId;
  }

  function toDeadLetter(kind: QueueKind, id: string, text: string, insertedOn: Date): DeadLetter {
    const decoded = decodeText(text, encoding);
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
