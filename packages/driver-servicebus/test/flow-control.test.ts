import { flowControlSuite } from '@switchyard/core/testing';
import { scratchStores } from '@switchyard/driver-postgres/testing';
import { afterAll, describe } from 'vitest';
import { emulatorTransport, tryStartEmulator } from './emulator.js';

const emulator = await tryStartEmulator();
const stores = scratchStores('fc_sb');

afterAll(async () => {
  await emulator?.close();
  await stores.dropAll();
});

describe.skipIf(!emulator)('service bus (emulator)', () => {
  // A max delivery count of 3 dead-letters a message: waiting must never come near it.
  flowControlSuite(`${stores.kind} store + service bus transport`, {
    store: () => stores.create(),
    transport: () =>
      emulatorTransport(emulator!, {}, { lockDurationMs: 5000, maxDeliveryCount: 3 }).transport,
    testTimeoutMs: 90_000,
  });
});
