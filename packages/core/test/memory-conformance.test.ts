import { memoryStore, memoryTransport } from '@switchyard/core';
import { storeConformance, transportConformance } from '@switchyard/core/testing';

transportConformance('memory', () => memoryTransport({ visibilityTimeoutMs: 1000 }), {
  visibilityMs: 1000,
  slackMs: 500,
});
storeConformance('memory', () => memoryStore());
