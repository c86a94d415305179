import { flowControlSuite } from '@switchyard/core/testing';
import { scratchStores } from '@switchyard/driver-postgres/testing';
import { afterAll, describe } from 'vitest';
import { storageQueueTransport } from '../src/index.js';
import { connectionString, deleteQueues, uniqueName } from './helpers.js';

const prefix = uniqueName('fc');
const stores = scratchStores('fc_sq');

describe.skipIf(!connectionString)('storage queues (Azurite)', () => {
  afterAll(async () => {
    await deleteQueues(prefix);
    await stores.dropAll();
  });

  // A dequeue count of 3 poisons a message: waiting for a key slot must never come near it.
  flowControlSuite(`${stores.kind} store + storage queue transport`, {
    store: () => stores.create(),
    transport: () => {
      const base = uniqueName(prefix);
      return storageQueueTransport({
        connectionString,
        queues: { stage: `${base}-s`, task: `${base}-t` },
        visibilityTimeoutMs: 5000,
        maxDequeueCount: 3,
      });
    },
    testTimeoutMs: 90_000,
  });
});
