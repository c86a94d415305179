/**
 * `QueueClients`: the SDK clients of one transport and the way every Storage call goes out —
 * through the adaptive concurrency bound, retried on throttling and server errors with a short
 * back-off, counted as a billable transaction, and (for a secret-sourced connection string)
 * re-run once with the rotated secret after a 403.
 * @module
 */

import type { TokenCredential } from '@azure/core-auth';
import {
  type QueueClient,
  QueueServiceClient,
  type StorageRetryOptions,
} from '@azure/storage-queue';
import type { ConnectionSource } from '@switchyard/azure/connection';
import { SwitchyardError, ValidationError } from '@switchyard/core';
import { type CachedSecret, type UsageCounter, withSecretRotation } from '@switchyard/core/driver';
import type { AdaptiveLimit } from './adaptive-limit.js';
import { backendError, isAbortError, isAuthError, statusOf } from './errors.js';

/** A Storage REST operation, as counted in `usage().operations` (one billed transaction each). */
export type StorageOperation =
  | 'putMessage'
  | 'getMessages'
  | 'deleteMessage'
  | 'updateMessage'
  | 'peekMessages'
  | 'createQueue'
  | 'getProperties';

/** Tries per call (the first and its retries) on server errors and connection failures. */
const MAX_TRIES = 8;
/**
 * How long a throttled call (503 ServerBusy) keeps trying. Throttling asks the client to come back
 * later, not to give up: a send behind a busy queue (2,000 messages/s) waits its turn, where a
 * fixed number of tries would fail sends as soon as a backlog outlasts the back-off.
 */
const THROTTLED_FOR_MS = 60_000;
const BACKOFF_MIN_MS = 50;
const BACKOFF_MAX_MS = 4000;

/**
 * Throttling (503 ServerBusy), 500 and 408 answers, a gateway's 502 and 504 (a connection it lost
 * to the service) and connection failures are worth retrying.
 */
function isRetryable(err: unknown): boolean {
  const status = statusOf(err);
  if (status === 503 || status === 500 || status === 408 || status === 502 || status === 504)
    return true;
  const code = (err as { code?: unknown } | null)?.code;
  return status === undefined && (code === 'REQUEST_SEND_ERROR' || code === 'ECONNRESET');
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

/** Options of {@link QueueClients}. */
export interface QueueClientsOptions {
  connection: ConnectionSource;
  retryOptions: StorageRetryOptions;
  limit: AdaptiveLimit;
  /** Whether a queue's calls go before the others waiting for a slot (the stage queue's). */
  urgent?: (queue: string) => boolean;
  counter: UsageCounter;
  /** Aborted when the transport closes: back-off waits end at once. */
  closed: AbortSignal;
}

export class QueueClients {
  private readonly staticService: QueueServiceClient | undefined;
  private readonly staticQueues = new Map<string, QueueClient>();
  /** Clients per connection-string value: a rotated secret yields a new value and new clients. */
  private current:
    | { value: string; service: QueueServiceClient; queues: Map<string, QueueClient> }
    | undefined;
  private lastRefresh: { from: string; promise: Promise<string> } | undefined;

  /** @throws ValidationError when a literal connection string cannot be parsed (never quoting it). */
  constructor(private readonly options: QueueClientsOptions) {
    const { connection, retryOptions } = options;
    if (connection.kind === 'connectionString') {
      try {
        this.staticService = QueueServiceClient.fromConnectionString(connection.value, {
          retryOptions,
        });
      } catch {
        // Not the SDK's message: it may quote the connection string.
        throw new ValidationError('invalid storageQueueTransport options', [
          { path: 'connectionString', message: 'is not a valid Storage connection string' },
        ]);
      }
    } else if (connection.kind === 'endpoint') {
      const credential = connection.credential ?? lazyDefaultCredential();
      this.staticService = new QueueServiceClient(connection.endpoint, credential, {
        retryOptions,
      });
    }
  }

  /**
   * One Storage call: bounded, retried on throttling and server errors, counted. Rejects with the
   * SDK's error (callers decide which failures they ignore); {@link run} wraps it.
   */
  async call<T>(
    operation: StorageOperation,
    queue: string,
    use: (client: QueueClient) => Promise<T>,
  ): Promise<T> {
    const { limit, counter, closed } = this.options;
    const urgent = this.options.urgent?.(queue) ?? false;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await limit.run(() => this.withRotation(queue, use), urgent);
        counter.add(operation);
        limit.succeeded();
        return result;
      } catch (err) {
        const throttled = statusOf(err) === 503;
        if (throttled) {
          counter.throttled();
          limit.throttled();
        }
        const spent = throttled ? Date.now() - started >= THROTTLED_FOR_MS : attempt >= MAX_TRIES;
        if (spent || closed.aborted || isAbortError(err) || !isRetryable(err)) throw err;
        // Full jitter: concurrent callers throttled together do not come back together.
        const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
        await sleep(Math.random() * cap, closed);
      }
    }
  }

  /** {@link call}, with SDK errors wrapped in a redacted {@link SwitchyardError}. */
  run<T>(
    operation: StorageOperation,
    queue: string,
    use: (client: QueueClient) => Promise<T>,
  ): Promise<T> {
    return this.call(operation, queue, use).catch((err: unknown) => {
      throw backendError(operation, queue, err);
    });
  }

  /** Runs one SDK call; with a secret-sourced connection string, a 403 refreshes it once and retries. */
  private withRotation<T>(queue: string, use: (client: QueueClient) => Promise<T>): Promise<T> {
    const { connection } = this.options;
    if (connection.kind !== 'secret') {
      return use(clientOf(this.staticService!, this.staticQueues, queue));
    }
    const secret = connection.secret;
    let used = '';
    const perCall: CachedSecret = {
      name: secret.name,
      get: (o) => secret.get(o),
      refresh: () => this.refreshAfter(secret, used),
    };
    return withSecretRotation(
      perCall,
      (value) => {
        used = value;
        return use(this.clientsForValue(value, queue));
      },
      isAuthError,
    );
  }

  private clientsForValue(value: string, queue: string): QueueClient {
    if (this.current?.value !== value) {
      let service: QueueServiceClient;
      try {
        service = QueueServiceClient.fromConnectionString(value, {
          retryOptions: this.options.retryOptions,
        });
      } catch {
        throw new SwitchyardError(
          'CONFIG_ERROR',
          'the secret does not hold a valid Storage connection string',
        );
      }
      this.current = { value, service, queues: new Map() };
    }
    return clientOf(this.current.service, this.current.queues, queue);
  }

  /**
   * One refresh per stale value: when many calls in flight fail with the old key, the first
   * refreshes the secret and the rest reuse that lookup instead of each asking the source again.
   */
  private refreshAfter(secret: CachedSecret, stale: string): Promise<string> {
    if (this.lastRefresh?.from === stale) return this.lastRefresh.promise;
    if (this.current && this.current.value !== stale) return Promise.resolve(this.current.value);
    const promise = secret.refresh();
    const entry = { from: stale, promise };
    this.lastRefresh = entry;
    promise.catch(() => {
      if (this.lastRefresh === entry) this.lastRefresh = undefined;
    });
    return promise;
  }
}

function clientOf(
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
