import { memoryStore, memoryTransport } from '@switchyard/core';
import { flowControlSuite } from '@switchyard/core/testing';

flowControlSuite('memory store, memory transport', {
  store: () => memoryStore(),
  transport: () => memoryTransport({ visibilityTimeoutMs: 5000 }),
});
