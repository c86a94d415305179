/**
 * `LaneClock`: when a transport reads each priority lane of its task queue again once a read came
 * back empty, and the wake-up of waiting receive calls when the transport puts a message in a lane.
 * @module
 */

import type { Priority } from '@switchyard/core';
import { PutWake } from './put-wake.js';

/** Idle back-off of a lane: the steps of one receive call's poll back-off, 50 ms doubling to 1 s. */
export const LANE_BACKOFF_MIN_MS = 50;
export const LANE_BACKOFF_MAX_MS = 1000;

interface LaneState {
  /** Not read before this time (epoch ms); 0 while the lane is busy (its last read found messages). */
  due: number;
  /** How long the next empty read keeps the lane quiet. */
  backoffMs: number;
  /** When the earliest message this transport put in the lane becomes visible; Infinity if none. */
  wakeAt: number;
}

/**
 * When each lane of one transport is read. Every Storage poll is a billed transaction, found
 * messages or not, so reading three lanes at the pace of the receive back-off would triple what an
 * idle worker pays. The rule:
 *
 * - a lane whose read came back empty is not read again for its own back-off (50 ms doubling to
 *   1 s), which is kept per lane across receive calls and shared by all of them;
 * - unless this transport put a message there since (send, retry, replay): the lane is due again
 *   as soon as that message is visible, and waiting receive calls wake up for it;
 * - a read that finds messages makes the lane due at once (busy lanes are read by every call).
 *
 * So an idle transport reads each lane queue (each shard) about once a second however many receive
 * calls wait, and a message another process sends to an idle lane waits at most about a second —
 * the ceiling the single queue's poll back-off reaches too.
 */
export class LaneClock {
  private readonly lanes: Record<Priority, LaneState> = {
    high: LaneClock.busy(),
    normal: LaneClock.busy(),
    low: LaneClock.busy(),
  };
  /** Waiting receive calls, woken by every put (each lane's `wakeAt` says when it is due). */
  private readonly wake = new PutWake();

  private static busy(): LaneState {
    return { due: 0, backoffMs: LANE_BACKOFF_MIN_MS, wakeAt: Number.POSITIVE_INFINITY };
  }

  /** True when `lane` may be read at `now`. */
  isDue(lane: Priority, now: number): boolean {
    const s = this.lanes[lane];
    return now >= Math.min(s.due, s.wakeAt);
  }

  /** Milliseconds from `now` until some lane is due (0 when one is already). */
  msUntilDue(now: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const s of Object.values(this.lanes)) next = Math.min(next, s.due, s.wakeAt);
    return Math.max(0, next - now);
  }

  /**
   * A read of `lane` starts at `now`. A quiet lane's next read is claimed at once, so the other
   * receive calls of this transport do not poll it while this one does.
   */
  startRead(lane: Priority, now: number): void {
    const s = this.lanes[lane];
    if (s.due > 0) s.due = now + s.backoffMs;
  }

  /** The read of `lane` started at `startedAt` ended at `now`, having `found` messages or not. */
  endRead(lane: Priority, startedAt: number, found: boolean, now: number): void {
    const s = this.lanes[lane];
    if (s.wakeAt <= startedAt) {
      // The put was visible when this read started: this read (or another call's) saw it. If it
      // found nothing, back off from the start again: the message may have been visible late.
      s.wakeAt = Number.POSITIVE_INFINITY;
      s.backoffMs = LANE_BACKOFF_MIN_MS;
    }
    if (found) {
      s.due = 0;
      s.backoffMs = LANE_BACKOFF_MIN_MS;
      return;
    }
    s.due = now + s.backoffMs;
    s.backoffMs = Math.min(s.backoffMs * 2, LANE_BACKOFF_MAX_MS);
  }

  /** This transport put a message in `lane` that becomes visible at `visibleAt` (epoch ms). */
  put(lane: Priority, visibleAt: number): void {
    const s = this.lanes[lane];
    s.wakeAt = Math.min(s.wakeAt, visibleAt);
    this.wake.put(0);
  }

  /** Waits `ms`, or less if the signal aborts or a message is put in a lane meanwhile. */
  async sleep(ms: number, signal: AbortSignal): Promise<void> {
    await this.wake.sleep(ms, signal);
  }
}
