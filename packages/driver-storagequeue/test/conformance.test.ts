import { transportConformance } from '@switchyard/core/testing';
import { afterAll, describe } from 'vitest';
import { storageQueueTransport } from '../src/index.js';
import { connectionString, deleteQueues, uniqueName } from './helpers.js';

describe.skipIf(!connectionString)('storagequeue on Azurite', () => {
  const prefix = uniqueName('c');
  afterAll(() => deleteQueues(prefix));

  transportConformance(
    'storagequeue',
    () => {
      const base = uniqueName(prefix);
      return storageQueueTransport({
        connectionString,
        queues: { stage: `${base}-s`, task: `${base}-t` },
        visibilityTimeoutMs: 1000,
        // The suite runs with lanes on: the priority tests need them, the rest must hold with them.
        priorityLanes: true,
      });
    },
    { visibilityMs: 1000 },
  );
});
