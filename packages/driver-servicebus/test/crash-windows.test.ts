import { crashWindowSuite } from '@switchyard/core/testing';
import { scratchStores } from '@switchyard/driver-postgres/testing';
import { afterAll, describe } from 'vitest';
import { emulatorTransport, tryStartEmulator } from './emulator.js';

const emulator = await tryStartEmulator();
const stores = scratchStores('cw_sb');

afterAll(async () => {
  await emulator?.close();
  await stores.dropAll();
});

describe.skipIf(!emulator)('service bus (emulator)', () => {
  crashWindowSuite(`${stores.kind} store + service bus transport`, {
    store: () => stores.create(),
    transport: () => emulatorTransport(emulator!, {}, { lockDurationMs: 1000 }).transport,
    visibilityMs: 1000,
    testTimeoutMs: 90_000,
  });
});
