export * from './errors.js';
export type * from './transport.js';
export type * from './store.js';
export * from './secrets/index.js';
export { decodeEnvelope, encodeEnvelope, ENVELOPE_VERSION, type Envelope, type StageEnvelope, type TaskEnvelope } from './envelope.js';
export { taskId, deriveJobId } from './ids.js';
export { memoryStore } from './memory/memory-store.js';
export { memoryTransport, type MemoryTransportOptions } from './memory/memory-transport.js';
