/**
 * Priority lanes on Service Bus: one queue per {@link Priority} behind the task queue, and the
 * receive that reads them in a {@link LaneSchedule}'s order.
 *
 * The task queue itself is the `normal` lane and `<task>-high` / `<task>-low` are the others, so
 * turning lanes on leaves every message already queued where a receive still reads it.
 *
 * Reading a lane costs no service call: each lane's receiver streams with its own prefetch credit
 * into a local buffer (`ReceivePump`), so a receive looks at all three buffers for free and fills
 * `maxMessages` from its first lane, then the next ones. An idle receive waits once, for its one
 * `waitMs`, on all three buffers at the same time and wakes on the first message of any lane: it
 * spends no more service operations than a receive on a single queue, and a message on a lane the
 * schedule did not pick first is not left waiting. What lanes do cost is two more receiver links,
 * each holding up to `prefetchCount` messages locked.
 * @module
 */
import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import type { FieldIssue } from '@switchyard/core';
import { PRIORITIES, type Priority } from '@switchyard/core/driver';
import type { ReceivePump } from './pump.js';

/** Longest queue name Service Bus accepts. */
const MAX_QUEUE_NAME = 260;
/** Letters, digits, periods, hyphens, underscores and slashes; a letter or digit at each end. */
const QUEUE_NAME_RULE = /^[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9])?$/;

/** The queue names a transport uses when its options give none. */
export const DEFAULT_QUEUE_NAMES: Readonly<{ stage: string; task: string }> = Object.freeze({
  stage: 'sb-jobs',
  task: 'sb-tasks',
});

/** The stage and task queue names of a transport's `queues` option, defaults applied. */
export function queueNamesOf(queues: { stage?: string; task?: string } | undefined): {
  stage: string;
  task: string;
} {
  return {
    stage: queues?.stage ?? DEFAULT_QUEUE_NAMES.stage,
    task: queues?.task ?? DEFAULT_QUEUE_NAMES.task,
  };
}

/** The queue of each lane: `<task>-high`, `<task>` itself for `normal`, `<task>-low`. */
export function laneQueueNames(taskQueue: string): Readonly<Record<Priority, string>> {
  return { high: `${taskQueue}-high`, normal: taskQueue, low: `${taskQueue}-low` };
}

/** Why `name` is not a valid Service Bus queue name, or undefined when it is. */
export function queueNameProblem(name: string): string | undefined {
  if (name.length < 1 || name.length > MAX_QUEUE_NAME)
    return `must be 1–${MAX_QUEUE_NAME} characters (is ${name.length})`;
  if (!QUEUE_NAME_RULE.test(name))
    return 'must be letters, digits, periods, hyphens, underscores and slashes, starting and ending with a letter or digit';
  return undefined;
}

/**
 * Checks the queue names lanes derive from the task queue's, pushing one issue per problem: the
 * task queue's name itself, the longest derived name (the suffix must still fit), and a stage
 * queue named like a lane (its messages would be read as tasks).
 */
export function checkLaneNames(names: { stage: string; task: string }, issues: FieldIssue[]): void {
  const base = queueNameProblem(names.task);
  if (base) {
    issues.push({ path: 'queues.task', message: `queue name "${names.task}" ${base}` });
    return;
  }
  const lanes = laneQueueNames(names.task);
  const longest = lanes.high.length >= lanes.low.length ? lanes.high : lanes.low;
  const derived = queueNameProblem(longest);
  if (derived) {
    issues.push({
      path: 'queues.task',
      message: `queue name "${names.task}" is too long once priorityLanes adds its lane suffix ("${longest}" ${derived})`,
    });
  }
  if (names.stage === lanes.high || names.stage === lanes.low) {
    issues.push({
      path: 'queues.stage',
      message: `queue name "${names.stage}" is a priority lane of the task queue "${names.task}"`,
    });
  }
}

/** One lane's receiver, as a receive reads it. */
export interface LaneReceiver {
  readonly lane: Priority;
  readonly queueName: string;
  readonly pump: ReceivePump;
}

/** A message received from a lane. */
export interface LaneMessage {
  readonly from: LaneReceiver;
  readonly raw: ServiceBusReceivedMessage;
}

/**
 * Up to `max` messages from `lanes`, read in the order given: as many as the first lane has
 * buffered, the rest from the next ones. Waits up to `waitMs` for a first message on any lane.
 *
 * A lane whose receiver opened moments ago and has received nothing yet may simply not have been
 * fed yet: while one read ahead of the first lane with messages is in that state, the receive
 * waits for it (until it receives or its warm-up ends, within `waitMs`), so the first receives
 * after start-up follow the schedule too instead of whichever link the service fed first.
 */
export async function receiveFromLanes(
  lanes: readonly LaneReceiver[],
  max: number,
  waitMs: number,
  signal?: AbortSignal,
): Promise<LaneMessage[]> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const now = Date.now();
    const first = lanes.findIndex((l) => l.pump.buffered > 0);
    const ahead = (first < 0 ? lanes : lanes.slice(0, first)).filter((l) => l.pump.warmingUp(now));
    const last = now >= deadline || signal?.aborted === true || lanes.some((l) => l.pump.isClosed);
    if (last || (first >= 0 && ahead.length === 0)) {
      const out = takeInOrder(lanes, max);
      // Empty with messages buffered: all had expired in the buffer; look again.
      if (out.length > 0 || last) return out;
      continue;
    }
    const until =
      first < 0 ? deadline : Math.min(deadline, Math.max(...ahead.map((l) => l.pump.warmUpEndsAt)));
    await whenAnyBuffered(first < 0 ? lanes : ahead, until - now, signal);
  }
}

function takeInOrder(lanes: readonly LaneReceiver[], max: number): LaneMessage[] {
  const out: LaneMessage[] = [];
  for (const from of lanes) {
    if (out.length >= max) break;
    for (const raw of from.pump.takeNow(max - out.length)) out.push({ from, raw });
  }
  return out;
}

/** Resolves when any of `lanes` has a message buffered, after `ms`, or on abort. */
async function whenAnyBuffered(
  lanes: readonly LaneReceiver[],
  ms: number,
  signal?: AbortSignal,
): Promise<void> {
  // One local signal ends the other lanes' waits (and their timers) once one resolves.
  const done = new AbortController();
  const forward = () => done.abort();
  signal?.addEventListener('abort', forward, { once: true });
  try {
    await Promise.race(lanes.map((l) => l.pump.whenBuffered(ms, done.signal)));
  } finally {
    done.abort();
    signal?.removeEventListener('abort', forward);
  }
}

/** Every lane's queue, highest first (the order dead letters are listed in). */
export function laneQueues(taskQueue: string): { lane: Priority; queueName: string }[] {
  const names = laneQueueNames(taskQueue);
  return PRIORITIES.map((lane) => ({ lane, queueName: names[lane] }));
}
