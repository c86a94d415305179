/**
 * Test helper: one in-process Service Bus emulator per test file, fresh queues per test.
 */
import { randomUUID } from 'node:crypto';
import { type ServiceBusTransportOptions, serviceBusTransport } from '../src/index.js';

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

/** Fresh uniquely named queues with the given lock duration, and a transport on them. */
export function freshQueues(
  emulator: Emulator,
  settings: { lockDurationMs?: number; maxDeliveryCount?: number } = {},
) {
  const suffix = randomUUID().slice(0, 8);
  const queues = { stage: `jobs-${suffix}`, task: `tasks-${suffix}` };
  for (const name of Object.values(queues)) {
    emulator.configureQueue(name, {
      lockDurationMs: settings.lockDurationMs ?? 1000,
      maxDeliveryCount: settings.maxDeliveryCount ?? 10,
    });
  }
  return queues;
}

export function emulatorTransport(
  emulator: Emulator,
  extra: Partial<ServiceBusTransportOptions> = {},
  settings?: { lockDurationMs?: number; maxDeliveryCount?: number },
) {
  const queues = freshQueues(emulator, settings);
  const transport = serviceBusTransport({
    connectionString: emulator.connectionString,
    queues,
    ...extra,
  });
  return { transport, queues };
}

export type { Emulator };
