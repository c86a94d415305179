/**
 * Test helper: one in-process Service Bus emulator per test file, fresh queues per test.
 */
import { randomUUID } from 'node:crypto';
import type { ReceivedMessage, Transport } from '@switchyard/core/driver';
import { type ServiceBusTransportOptions, serviceBusTransport } from '../src/index.js';
import { laneQueueNames } from '../src/lanes.js';

type Emulator = Awaited<
  ReturnType<typeof import('@switchyard/servicebus-emulator')['startEmulator']>
>;

/** Starts the emulator, or returns undefined (tests skip) — unless `REQUIRE_SERVICES=1`, which makes a failure loud. */
export async function tryStartEmulator(): Promise<Emulator | undefined> {
  try {
    const { startEmulator } = await import('@switchyard/servicebus-emulator');
    return await startEmulator({ port: 0, lockDurationMs: 1000 });
  } catch (err) {
    if (process.env.REQUIRE_SERVICES === '1')
      throw new Error('Service Bus emulator could not start', { cause: err });
    console.warn(
      `[driver-servicebus] emulator unavailable, skipping: ${err instanceof Error ? err.message : String(err)}`,
    );
    return undefined;
  }
}

/** Settings of the fresh queues; `priorityLanes` also creates the task queue's lane queues. */
export interface QueueSetup {
  lockDurationMs?: number;
  maxDeliveryCount?: number;
  priorityLanes?: boolean;
}

/** Fresh uniquely named queues with the given lock duration, and a transport on them. */
export function freshQueues(emulator: Emulator, settings: QueueSetup = {}) {
  const suffix = randomUUID().slice(0, 8);
  const queues = { stage: `jobs-${suffix}`, task: `tasks-${suffix}` };
  const lanes = laneQueueNames(queues.task);
  const names = settings.priorityLanes
    ? [queues.stage, lanes.high, lanes.normal, lanes.low]
    : Object.values(queues);
  for (const name of names) {
    emulator.configureQueue(name, {
      lockDurationMs: settings.lockDurationMs ?? 1000,
      maxDeliveryCount: settings.maxDeliveryCount ?? 10,
    });
  }
  return queues;
}

/** A transport on fresh queues (its lanes' too, with `extra.priorityLanes`). */
export function emulatorTransport(
  emulator: Emulator,
  extra: Partial<ServiceBusTransportOptions> = {},
  settings: QueueSetup = {},
) {
  const queues = freshQueues(emulator, {
    ...settings,
    priorityLanes: settings.priorityLanes ?? extra.priorityLanes === true,
  });
  const transport = serviceBusTransport({
    connectionString: emulator.connectionString,
    queues,
    ...extra,
  });
  return { transport, queues };
}

export type { Emulator };

/** Receives from `queue` until `n` messages arrived or `withinMs` passed. */
export async function receiveN(
  transport: Transport,
  queue: 'stage' | 'task',
  n: number,
  withinMs = 5000,
): Promise<ReceivedMessage[]> {
  const got: ReceivedMessage[] = [];
  const deadline = Date.now() + withinMs;
  while (got.length < n && Date.now() < deadline) {
    got.push(
      ...(await transport.receive(queue, {
        maxMessages: n - got.length,
        waitMs: Math.min(500, deadline - Date.now()),
      })),
    );
  }
  return got;
}
