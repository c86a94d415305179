/**
 * One queue's receive loop: several pullers keep receive calls in flight while earlier messages
 * are processed, asking for as many messages as the free task slots and the prefetch need (see
 * {@link TaskSlots}), and every message is processed, settled and its lock kept until then. On
 * stop, the loop drains: messages in flight finish (their handlers saw the abort) and are settled.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { toErrorInfo } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { QueueKind, ReceivedMessage, SettlementAction } from '../../transport.js';
import { DEFAULTS } from '../defaults.js';
import type { InboundMessage } from '../inbound.js';
import type { TransportState } from '../options.js';
import type { AbortGroup } from '../tasks/handler.js';
import { LockRenewal } from './lock-renewal.js';
import { Settler } from './settler.js';
import { TaskSlots } from './slots.js';

export interface ReceiveLoopOptions {
  target: TransportState;
  queue: QueueKind;
  /** Task handlers running at once (see {@link TaskSlots}; a stage message counts as one task). */
  capacity: number;
  /** Tasks per message to expect at first: the pack size. */
  tasksPerMessage: number;
  /** Most tasks held beyond `capacity`, waiting for a slot (see {@link TaskSlots}; 0: none). */
  prefetch: number;
  /** Receive calls kept in flight. */
  receivers: number;
  /** Lock / visibility asked of the transport, ms. */
  lockMs: number;
  /** Idle wait per receive call, ms. */
  waitMs: number;
  /** Stops the loop. */
  stop: AbortSignal;
  /** Aborts the running handlers on stop. */
  group: AbortGroup;
  process: (message: InboundMessage, group: AbortGroup) => Promise<SettlementAction>;
  logger: Logger;
}

export async function receiveLoop(options: ReceiveLoopOptions): Promise<void> {
  const { target, queue, capacity, receivers, stop, logger } = options;
  const transport = target.transport;
  const locks = new LockRenewal(transport, options.lockMs);
  const settler = new Settler(transport, target.name, logger);
  let reserved = 0; // tasks the receives in flight asked for
  let waiters: (() => void)[] = [];
  const freed = () => {
    if (waiters.length === 0) return;
    const wake = waiters;
    waiters = [];
    for (const w of wake) w();
  };
  const untilFreed = () => new Promise<void>((resolve) => waiters.push(resolve));
  const slots = new TaskSlots({
    capacity,
    expectedPerMessage: options.tasksPerMessage,
    prefetch: options.prefetch,
    freed,
  });

  const dispatch = dispatcher(options, { locks, settler, slots });

  const pull = async () => {
    let backoffMs = 0;
    while (!stop.aborted) {
      // Each puller asks for its share, so all of them keep a receive in flight.
      const share = Math.max(1, Math.ceil(slots.messages(slots.limit()) / receivers));
      const want = Math.min(slots.wanted(reserved), share, transport.limits.maxReceiveMessages);
      if (want <= 0) {
        await untilFreed();
        continue;
      }
      const reserving = slots.reserve(want);
      reserved += reserving;
      let messages: ReceivedMessage[];
      const asked = performance.now();
      try {
        messages = await transport.receive(queue, {
          maxMessages: want,
          visibilityTimeoutMs: options.lockMs,
          waitMs: options.waitMs,
          abortSignal: stop,
        });
        backoffMs = 0;
        if (messages.length > 0) slots.receiveTook(performance.now() - asked);
      } catch (err) {
        if (stop.aborted) break;
        backoffMs = await backOff(options, backoffMs, err);
        continue;
      } finally {
        reserved -= reserving;
        freed();
      }
      for (const message of messages) dispatch(message);
    }
  };

  // A puller waiting for capacity must see the stop too.
  stop.addEventListener('abort', freed, { once: true });
  try {
    await Promise.all(Array.from({ length: receivers }, pull));
    while (locks.size > 0) await untilFreed();
  } finally {
    locks.stop();
  }
}

/**
 * Starts processing a received message: its lock is renewed and its slots held until it is
 * settled.
 */
function dispatcher(
  { process: processMessage, group, logger }: ReceiveLoopOptions,
  { locks, settler, slots }: { locks: LockRenewal; settler: Settler; slots: TaskSlots },
): (message: ReceivedMessage) => void {
  return (message) => {
    locks.hold(message);
    const held = slots.received();
    processMessage(
      {
        body: message.body,
        deliveryCount: message.deliveryCount,
        held,
        enqueuedAt: message.enqueuedAt,
      },
      group,
    )
      .then((action) => settler.settle(message, action))
      .catch((err: unknown) =>
        logger.error('unexpected processing failure', { error: toErrorInfo(err).message }),
      )
      .finally(() => {
        locks.release(message);
        held.ended();
      });
  };
}

/**
 * After a failed receive: logs it and waits, twice as long as after the previous failure in a row
 * (`previousMs`, 0 for none), up to the maximum. Returns this wait.
 */
async function backOff(
  { target, queue, stop, logger }: ReceiveLoopOptions,
  previousMs: number,
  err: unknown,
): Promise<number> {
  const backoffMs = Math.min(
    DEFAULTS.work.maxReceiveBackoffMs,
    previousMs ? previousMs * 2 : DEFAULTS.work.receiveBackoffMs,
  );
  logger.error('receive failed; backing off', {
    transport: target.name,
    queue,
    error: toErrorInfo(err).message,
    backoffMs,
  });
  await sleep(backoffMs, undefined, { signal: stop }).catch(() => {});
  return backoffMs;
}
