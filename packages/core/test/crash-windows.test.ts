import { memoryStore, memoryTransport } from '@switchyard/core';
import { crashWindowSuite } from '@switchyard/core/testing';

crashWindowSuite('memory store, memory transport', {
  store: () => memoryStore(),
  transport: () => memoryTransport({ visibilityTimeoutMs: 500 }),
  visibilityMs: 500,
});
