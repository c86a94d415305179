/**
 * Job priorities and the lanes that carry them. A job's priority travels with each of its task
 * messages; a transport that keeps lanes receives from them by weight, so higher priorities run
 * first and a lower one still gets a share while higher lanes stay busy (never starved).
 * @module
 */
import type { FieldIssue } from './errors.js';

/**
 * How soon a job's tasks run relative to other jobs' on the same transport. Three levels, not a
 * number: each level is a lane (a queue of its own on Service Bus and Storage Queues), and three
 * cover interactive, ordinary and background work without turning queue names into a range.
 */
export type Priority = 'high' | 'normal' | 'low';

/** Every priority, highest first. */
export const PRIORITIES: readonly Priority[] = Object.freeze(['high', 'normal', 'low']);

/** True when `value` is one of {@link PRIORITIES}. */
export function isPriority(value: unknown): value is Priority {
  return value === 'high' || value === 'normal' || value === 'low';
}

/**
 * Share of receives each lane goes first in while every lane has messages: out of ten, six start
 * with `high`, three with `normal`, one with `low`. A receive fills what its first lane leaves
 * from the others, highest first, so no lane is polled while a higher one could fill it — and
 * `low` still starts one receive in ten however busy `high` is.
 */
export const PRIORITY_WEIGHTS: Readonly<Record<Priority, number>> = Object.freeze({
  high: 6,
  normal: 3,
  low: 1,
});

/**
 * The order in which one receive reads a transport's lanes, by smooth weighted round-robin: each
 * call to {@link LaneSchedule.next} picks the lane with the most credit (ties to the higher
 * priority), so the picks of any ten consecutive calls follow {@link PRIORITY_WEIGHTS} exactly and
 * are spread out, not bunched. A transport keeps one schedule per queue it receives from.
 *
 * @example
 * ```ts
 * const lanes = new LaneSchedule();
 * lanes.next(); // ['high', 'normal', 'low']
 * ```
 */
export class LaneSchedule {
  private readonly weights: readonly number[];
  private readonly credit: number[];
  private readonly total: number;
  /** The orders, one per first lane, built once: `next` allocates nothing. */
  private readonly orders: readonly (readonly Priority[])[];

  constructor(weights: Readonly<Record<Priority, number>> = PRIORITY_WEIGHTS) {
    this.weights = PRIORITIES.map((p) => Math.max(0, weights[p]));
    this.total = this.weights.reduce((a, b) => a + b, 0);
    if (this.total <= 0) throw new RangeError('LaneSchedule: at least one weight must be positive');
    this.credit = PRIORITIES.map(() => 0);
    this.orders = PRIORITIES.map((first) =>
      Object.freeze([first, ...PRIORITIES.filter((p) => p !== first)]),
    );
  }

  /** The lanes in the order the next receive reads them: the picked lane, then the rest highest first. */
  next(): readonly Priority[] {
    let best = 0;
    for (let i = 0; i < this.credit.length; i++) {
      this.credit[i]! += this.weights[i]!;
      if (this.credit[i]! > this.credit[best]!) best = i;
    }
    this.credit[best]! -= this.total;
    return this.orders[best]!;
  }
}

/** Why a message's `priority` cannot be sent (it is set but no lane), naming `messages[index]`. */
export function priorityIssue(
  message: { readonly priority?: unknown },
  index: number,
): FieldIssue | undefined {
  return message.priority === undefined || isPriority(message.priority)
    ? undefined
    : { path: `messages[${index}].priority`, message: "must be 'high', 'normal' or 'low'" };
}

/**
 * `messages` grouped by lane (absent priority: `normal`), each group in the order sent. When all
 * share one lane the group is `messages` itself: a job's messages share its priority, so that is
 * the usual case, and it copies nothing.
 */
export function byPriority<M extends { readonly priority?: Priority }>(
  messages: readonly M[],
): Map<Priority, readonly M[]> {
  const first = messages[0]?.priority ?? 'normal';
  if (messages.every((m) => (m.priority ?? 'normal') === first))
    return new Map([[first, messages]]);
  const groups = new Map<Priority, M[]>();
  for (const m of messages) {
    const lane = m.priority ?? 'normal';
    const group = groups.get(lane);
    if (group) group.push(m);
    else groups.set(lane, [m]);
  }
  return groups;
}
