/**
 * The memory store's flow control: key slots held under leases, and rate limits over a sliding
 * window of start times — the same rules as the PostgreSQL store's `flow_admit`.
 * @module
 */
import type { FlowDecision, RateRequest, SlotRef, SlotRequest } from '../store.js';

const keyOf = (scope: string, key: string) => `${scope}\u0000${key}`;

export class MemoryFlowControl {
  /** Per (scope, key): each holder's lease expiry, ms. */
  private readonly slots = new Map<string, Map<string, number>>();
  /** Per (scope, key): start times within the last period, ascending, ms. */
  private readonly starts = new Map<string, number[]>();

  /** Takes the slot and the start, both or neither. */
  take(slot: SlotRequest | undefined, rate: RateRequest | undefined, now: number): FlowDecision {
    let holders: Map<string, number> | undefined;
    if (slot) {
      holders = this.slots.get(keyOf(slot.scope, slot.key));
      if (holders) {
        for (const [holder, expiresAt] of holders) if (expiresAt <= now) holders.delete(holder);
        if (holders.size >= slot.limit) return { outcome: 'concurrency' };
      }
    }
    if (rate) {
      const key = keyOf(rate.scope, rate.key);
      const recent = (this.starts.get(key) ?? []).filter((t) => t > now - rate.periodMs);
      this.starts.set(key, recent);
      if (recent.length >= rate.limit) {
        // The start that has to leave the window before one is free.
        const blocking = recent[recent.length - rate.limit]!;
        return { outcome: 'rateLimit', retryAfterMs: Math.max(1, blocking + rate.periodMs - now) };
      }
      recent.push(now);
    }
    if (slot) {
      if (!holders) {
        holders = new Map();
        this.slots.set(keyOf(slot.scope, slot.key), holders);
      }
      holders.set(slot.holder, now + slot.leaseMs);
    }
    return { outcome: 'admitted' };
  }

  renew(slots: readonly SlotRef[], leaseMs: number, now: number): string[] {
    const renewed: string[] = [];
    for (const s of slots) {
      const holders = this.slots.get(keyOf(s.scope, s.key));
      // An expired slot not yet swept is still nobody else's: renewing it is safe.
      if (holders?.has(s.holder)) {
        holders.set(s.holder, now + leaseMs);
        renewed.push(s.holder);
      }
    }
    return renewed;
  }

  release(slots: readonly SlotRef[]): void {
    for (const s of slots) {
      const key = keyOf(s.scope, s.key);
      const holders = this.slots.get(key);
      holders?.delete(s.holder);
      if (holders?.size === 0) this.slots.delete(key);
    }
  }
}
