import type { ReceivedMessage, Transport } from '../../transport.js';

/** The renewal timer never ticks faster than this. */
const MIN_TICK_MS = 50;

/**
 * Keeps the locks of a receive loop's messages in flight: every message held for more than a
 * third of the lock duration is extended by another lock duration. At most one extension per
 * message is in flight, so a slow backend is not sent a pile of them.
 */
export class LockRenewal {
  /** Messages in flight, with when their lock was last taken or extended. */
  private readonly held = new Map<ReceivedMessage, number>();
  private readonly extending = new Set<ReceivedMessage>();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly lockMs: number,
  ) {
    if (!transport.extendLock) return;
    this.timer = setInterval(() => this.tick(), Math.max(MIN_TICK_MS, lockMs / 3));
    this.timer.unref();
  }

  /** Messages held now. */
  get size(): number {
    return this.held.size;
  }

  hold(message: ReceivedMessage): void {
    this.held.set(message, Date.now());
  }

  release(message: ReceivedMessage): void {
    this.held.delete(message);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private tick(): void {
    const now = Date.now();
    for (const [message, since] of this.held) {
      if (now - since <= this.lockMs / 3 || this.extending.has(message)) continue;
      this.held.set(message, now);
      this.extending.add(message);
      this.transport.extendLock!(message, this.lockMs)
        .catch(() => {})
        .finally(() => this.extending.delete(message));
    }
  }
}
