import { crashWindowSuite } from '@switchyard/core/testing';
import { scratchStores } from '@switchyard/driver-postgres/testing';
import { afterAll, describe } from 'vitest';
import { storageQueueTransport } from '../src/index.js';
import { connectionString, deleteQueues, uniqueName } from './helpers.js';

const prefix = uniqueName('cw');
const stores = scratchStores('cw_sq');

describe.skipIf(!connectionString)('storage queues (Azurite)', () => {
  afterAll(async () => {
    await deleteQueues(prefix);
    await stores.dropAll();
  });

  crashWindowSuite(`${stores.kind} store + storage queue transport`, {
    store: () => stores.create(),
    transport: () => {
      const base = uniqueName(prefix);
      return storageQueueTransport({
        connectionString,
        queues: { stage: `${base}-s`, task: `${base}-t` },
        visibilityTimeoutMs: 1000,
      });
    },
    visibilityMs: 1000,
    // An idle receive polls about once a second (plus Azurite's time to answer under load).
    redeliveryMs: 2000,
    testTimeoutMs: 90_000,
  });
});
