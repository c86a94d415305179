/**
 * A prefetching peek-lock receiver: the SDK's streaming `subscribe()` feeding a local buffer.
 *
 * Why not `receiveMessages`: each call that ends before its credit is used drains the link, and
 * the SDK closes the link when a drain takes over 200 ms (hard-coded) — which happens under load
 * or over a slow link. Messages of a closed link stay locked until their lock expires, and their
 * settlements can hang. A streaming receiver never drains: credit flows back one by one.
 *
 * `processMessage` resolves only when a message is handed out by `take`, and the SDK adds one
 * credit per resolved call, so at most `prefetch` messages are buffered. Auto-completion and
 * auto lock renewal are off, and the handler never throws (a throw makes the SDK abandon).
 * @module
 */
import type { ServiceBusReceivedMessage, ServiceBusReceiver } from '@azure/service-bus';

interface Buffered {
  raw: ServiceBusReceivedMessage;
  release: () => void;
}

/** Messages whose lock ends within this margin are not handed out (they come back anyway). */
const LOCK_MARGIN_MS = 200;
/**
 * How long after opening an empty buffer may only mean that the link has not been fed yet (attach
 * and the first transfers take a few round trips), rather than that the queue is empty.
 */
const WARM_UP_MS = 500;

export class ReceivePump {
  private readonly buffer: Buffered[] = [];
  private readonly waiters = new Set<() => void>();
  private readonly subscription: { close(): Promise<void> };
  private closed = false;
  /** When the buffer stops counting as possibly not fed yet (see {@link ReceivePump.warmingUp}). */
  private warmUntil = Date.now() + WARM_UP_MS;
  /** The last error the SDK reported (it reconnects by itself); for diagnostics. */
  lastError: unknown;

  /**
   * @param onError called with each error the SDK reports (it reconnects by itself), e.g. for the
   *   transport to notice a `ServerBusy`.
   */
  constructor(
    readonly receiver: ServiceBusReceiver,
    prefetch: number,
    onError?: (error: unknown) => void,
  ) {
    this.subscription = receiver.subscribe(
      {
        processMessage: (raw) =>
          new Promise<void>((release) => {
            if (this.closed) return release();
            this.warmUntil = 0;
            this.buffer.push({ raw, release });
            this.wake();
          }),
        processError: async (args) => {
          this.lastError = args.error;
          onError?.(args.error);
        },
      },
      { autoCompleteMessages: false, maxConcurrentCalls: prefetch },
    );
  }

  /** Up to `n` buffered messages whose lock is still good; waits up to `waitMs` for a first one. */
  async take(
    n: number,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<ServiceBusReceivedMessage[]> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const out = this.drainBuffer(n);
      if (out.length > 0 || this.closed || signal?.aborted || Date.now() >= deadline) return out;
      await this.waitForMessage(deadline - Date.now(), signal);
    }
  }

  /** Messages buffered now (some may turn out to be expired when taken). */
  get buffered(): number {
    return this.buffer.length;
  }

  /** True once {@link ReceivePump.close} ran: nothing more will arrive. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * True while the receiver was opened moments ago and has received nothing yet: its empty
   * buffer does not yet say the queue is empty. Ends at the first message or after `WARM_UP_MS`.
   */
  warmingUp(now = Date.now()): boolean {
    return now < this.warmUntil;
  }

  /** When {@link ReceivePump.warmingUp} ends at the latest (epoch ms; in the past once warm). */
  get warmUpEndsAt(): number {
    return this.warmUntil;
  }

  /** Up to `n` buffered messages whose lock is still good, without waiting. */
  takeNow(n: number): ServiceBusReceivedMessage[] {
    return this.drainBuffer(n);
  }

  /** Resolves once a message is buffered (at once if one is), after `ms`, on abort or on close. */
  whenBuffered(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.buffer.length > 0 || this.closed || signal?.aborted) return Promise.resolve();
    return this.waitForMessage(ms, signal);
  }

  private drainBuffer(n: number): ServiceBusReceivedMessage[] {
    const out: ServiceBusReceivedMessage[] = [];
    const now = Date.now();
    while (out.length < n && this.buffer.length > 0) {
      const { raw, release } = this.buffer.shift()!;
      release(); // gives the SDK its credit back
      const until = raw.lockedUntilUtc?.getTime();
      if (until !== undefined && until - now < LOCK_MARGIN_MS) continue; // expired while buffered
      out.push(raw);
    }
    return out;
  }

  private waitForMessage(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Stops the flow; buffered messages are released unsettled (they come back after their lock). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const { release } of this.buffer.splice(0)) release();
    this.wake();
    await this.subscription.close().catch(() => undefined);
    await this.receiver.close().catch(() => undefined);
  }
}
