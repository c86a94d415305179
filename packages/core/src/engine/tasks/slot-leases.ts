/**
 * The key slots this Switchyard holds (a task's `concurrency`): renewed together, one store round
 * trip per tick, every third of the lease, and given back in group commits when handlers end. A
 * slot whose release fails is no longer renewed, so its lease frees it.
 *
 * Each slot is known to be held until the time its last grant or renewal was *asked for* plus the
 * lease (the store counts the lease from when it answers, later): a handler starts only while that
 * is comfortably ahead, so a store slower than the lease (a grant, then a claim stuck in a queue)
 * can not start a handler on a slot another worker was already given.
 */
import { toErrorInfo } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { FlowControlCapability, SlotRef } from '../../store.js';
import { Batcher } from '../../util/batcher.js';
import { DEFAULTS } from '../defaults.js';

/** A held slot and until when it is surely held (`performance.now()` time). */
interface Held {
  slot: SlotRef;
  safeUntil: number;
}

export class SlotLeases {
  private readonly held = new Map<string, Held>();
  private readonly releases: Batcher<SlotRef, undefined>;
  private timer: NodeJS.Timeout | undefined;
  private renewing = false;
  /** Releases not yet answered (closing waits for them). */
  private readonly releasing = new Set<Promise<void>>();

  constructor(
    private readonly store: FlowControlCapability,
    readonly leaseMs: number,
    private readonly logger: Logger,
  ) {
    const size = DEFAULTS.batchers.slotReleases;
    this.releases = new Batcher(
      async (slots) => {
        try {
          await store.releaseSlots(slots);
        } catch (err) {
          logger.warn('releasing key slots failed; their leases will free them', {
            slots: slots.length,
            error: toErrorInfo(err).message,
          });
        }
        return slots.map(() => undefined);
      },
      size.maxBatch,
      size.inFlight,
    );
  }

  /** Slots held now. */
  get size(): number {
    return this.held.size;
  }

  /** A slot the store granted to a request sent at `askedAt` (`performance.now()`): renewed until released. */
  hold(slot: SlotRef, askedAt: number): void {
    this.held.set(slot.holder, { slot, safeUntil: askedAt + this.leaseMs });
    if (!this.timer) {
      this.timer = setInterval(() => this.renew(), Math.max(50, Math.floor(this.leaseMs / 3)));
      this.timer.unref();
    }
  }

  /** Gives a slot back (not awaited by the handler's task: its lease is the fallback). */
  release(slot: SlotRef): void {
    this.held.delete(slot.holder);
    if (this.held.size === 0) this.stopTimer();
    const releasing = this.releases.add(slot);
    this.releasing.add(releasing);
    void releasing.finally(() => this.releasing.delete(releasing));
  }

  /**
   * True when the slot is surely held for at least another third of its lease, renewing it first
   * if need be; false when it was lost (expired and freed), and then it is no longer renewed.
   */
  async secure(slot: SlotRef): Promise<boolean> {
    const held = this.held.get(slot.holder);
    if (!held) return false;
    if (performance.now() + this.leaseMs / 3 < held.safeUntil) return true;
    const askedAt = performance.now();
    const renewed = await this.store.renewSlots([slot], this.leaseMs);
    if (renewed.includes(slot.holder)) {
      held.safeUntil = Math.max(held.safeUntil, askedAt + this.leaseMs);
      return true;
    }
    this.held.delete(slot.holder);
    return false;
  }

  /** Stops renewing and waits for the releases under way (the Switchyard closes). */
  async close(): Promise<void> {
    this.stopTimer();
    await Promise.all([...this.releasing]);
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private renew(): void {
    if (this.renewing || this.held.size === 0) return;
    this.renewing = true;
    const slots = [...this.held.values()].map((h) => h.slot);
    const askedAt = performance.now();
    this.store
      .renewSlots(slots, this.leaseMs)
      .then((renewed) => {
        const kept = new Set(renewed);
        for (const slot of slots) {
          const held = this.held.get(slot.holder);
          if (!held) continue; // released meanwhile
          if (kept.has(slot.holder)) {
            held.safeUntil = Math.max(held.safeUntil, askedAt + this.leaseMs);
            continue;
          }
          // Lost: a worker stalled past its lease lets another take it.
          this.held.delete(slot.holder);
          this.logger.warn(
            'a key slot expired before its handler ended (the worker stalled past its lease)',
            {
              scope: slot.scope,
              key: slot.key,
            },
          );
        }
      })
      .catch((err: unknown) =>
        this.logger.warn('renewing key slots failed; retrying at the next tick', {
          slots: slots.length,
          error: toErrorInfo(err).message,
        }),
      )
      .finally(() => {
        this.renewing = false;
      });
  }
}
