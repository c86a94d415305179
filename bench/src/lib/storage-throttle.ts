/**
 * An HTTP proxy in front of Azurite that enforces a storage account's scalability targets as
 * Azure Storage does, answering `503 Server Busy` with `x-ms-error-code: ServerBusy` beyond them
 * (Azurite throttles nothing). For tests and benchmarks; it is not part of any driver.
 *
 * Targets (https://learn.microsoft.com/azure/storage/queues/scalability-targets, read
 * 2026-12-02): a single queue up to 2,000 messages per second (1 KiB messages); a standard
 * account up to 20,000 requests per second. Every request costs one against its account; a
 * request on a queue costs one against the queue, and a `GET …/messages` that returns k > 1
 * messages costs k (charged once the answer is known, so the queue may briefly go into debt).
 * Budgets refill continuously and hold at most `burstSeconds` of their rate.
 * @module
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Options of {@link startStorageThrottle}. */
export interface StorageThrottleOptions {
  /** Where requests go (Azurite, or a latency proxy in front of it). */
  target: { host: string; port: number };
  /** Messages per second one queue serves. @defaultValue 2000 */
  queueMessagesPerSecond?: number;
  /** Requests per second the account serves. @defaultValue 20000 */
  accountRequestsPerSecond?: number;
  /** Most of a budget usable at once after idling, in seconds of its rate. @defaultValue 1 */
  burstSeconds?: number;
  /**
   * Answers each of the first requests with this status and an empty body instead of forwarding
   * it, as a gateway that lost its connection to the service does (502, 504). @defaultValue none
   */
  gatewayErrors?: readonly number[];
}

/** What a {@link StorageThrottle} has seen. */
export interface StorageThrottleStats {
  requests: number;
  /** Requests answered 503 ServerBusy. */
  throttled: number;
  /** Requests answered with one of `gatewayErrors`. */
  gatewayErrors: number;
}

/** A running throttling proxy. */
export interface StorageThrottle {
  /** Port on 127.0.0.1. */
  port: number;
  stats(): StorageThrottleStats;
  /** Stops listening and closes open connections. Idempotent. */
  close(): Promise<void>;
}

class Budget {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly perSecond: number,
    private readonly capacity: number,
  ) {
    this.tokens = capacity;
  }

  /** True and spends `n` when the budget is not exhausted (it may go into debt by the rest). */
  tryTake(n: number, now: number): boolean {
    this.refill(now);
    if (this.tokens <= 0) return false;
    this.tokens -= n;
    return true;
  }

  /** Spends `n` more, unconditionally. */
  charge(n: number, now: number): void {
    this.refill(now);
    this.tokens -= n;
  }

  private refill(now: number): void {
    this.tokens = Math.min(
      this.capacity,
      this.tokens + ((now - this.last) / 1000) * this.perSecond,
    );
    this.last = now;
  }
}

const QUEUE_BUSY = 'The server is busy.';
const ACCOUNT_BUSY = 'Operations per second is over the account limit.';

/** Starts the proxy on a free loopback port. */
export async function startStorageThrottle(
  options: StorageThrottleOptions,
): Promise<StorageThrottle> {
  const queueRate = options.queueMessagesPerSecond ?? 2000;
  const accountRate = options.accountRequestsPerSecond ?? 20_000;
  const burst = options.burstSeconds ?? 1;
  const accounts = new Map<string, Budget>();
  const queues = new Map<string, Budget>();
  const budget = (map: Map<string, Budget>, key: string, rate: number): Budget => {
    let b = map.get(key);
    if (!b) {
      b = new Budget(rate, Math.max(1, rate * burst));
      map.set(key, b);
    }
    return b;
  };
  const stats: StorageThrottleStats = { requests: 0, throttled: 0, gatewayErrors: 0 };
  const gatewayErrors = [...(options.gatewayErrors ?? [])];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

  const server = http.createServer((req, res) => {
    stats.requests++;
    const gatewayError = gatewayErrors.shift();
    if (gatewayError !== undefined) {
      stats.gatewayErrors++;
      req.resume();
      res.writeHead(gatewayError).end();
      return;
    }
    const url = req.url ?? '/';
    const [account = '', queue] = url.split('?')[0]!.split('/').filter(Boolean);
    const now = performance.now();
    const queueBudget = queue ? budget(queues, `${account}/${queue}`, queueRate) : undefined;
    const refusal = !budget(accounts, account, accountRate).tryTake(1, now)
      ? ACCOUNT_BUSY
      : queueBudget && !queueBudget.tryTake(1, now)
        ? QUEUE_BUSY
        : undefined;
    if (refusal) {
      stats.throttled++;
      req.resume();
      serverBusy(res, refusal);
      return;
    }
    // The body is read first so that a request can be sent again: see `forward`'s error handler.
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => forward(Buffer.concat(chunks), false));
    const forward = (body: Buffer, again: boolean) => {
      const upstream = http.request(
        {
          host: options.target.host,
          port: options.target.port,
          method: req.method,
          path: url,
          headers: req.headers,
          agent,
        },
        (answer) => {
          const dequeue = req.method === 'GET' && /\/messages(\?|$)/.test(url) && queueBudget;
          if (!dequeue) {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
            return;
          }
          const parts: Buffer[] = [];
          answer.on('data', (c: Buffer) => parts.push(c));
          answer.on('end', () => {
            const answered = Buffer.concat(parts);
            const returned = answered.toString('utf8').split('<QueueMessage>').length - 1;
            if (returned > 1) queueBudget.charge(returned - 1, performance.now());
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(answered);
          });
        },
      );
      upstream.on('error', (err: NodeJS.ErrnoException) => {
        // A kept-alive socket the target closed while this request was being written: the
        // target never read it (Node's documented race), so it is sent once more on a new socket.
        if (
          !again &&
          upstream.reusedSocket &&
          (err.code === 'ECONNRESET' || err.code === 'EPIPE')
        ) {
          forward(body, true);
          return;
        }
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      upstream.end(body);
    };
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    stats: () => ({ ...stats }),
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      });
      return closing;
    },
  };
}

/** The answer Azure Storage gives a throttled request. */
function serverBusy(res: http.ServerResponse, message: string): void {
  const requestId = crypto.randomUUID();
  const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code><Message>${message}\nRequestId:${requestId}\nTime:${new Date().toISOString()}</Message></Error>`;
  res.writeHead(503, 'Server Busy', {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
    'x-ms-error-code': 'ServerBusy',
    'x-ms-request-id': requestId,
    'x-ms-version': '2025-11-05',
  });
  res.end(body);
}
