export * from './errors.js';
export type * from './transport.js';
export type * from './store.js';
export * from './secrets/index.js';
export { decodeEnvelope, encodeEnvelope, ENVELOPE_VERSION, type Envelope, type StageEnvelope, type TaskEnvelope } from './envelope.js';
export { taskId, deriveJobId } from './ids.js';
export { memoryStore } from './memory/memory-store.js';
export { memoryTransport, type MemoryTransportOptions } from './memory/memory-transport.js';
export {
  defineJob,
  defineTask,
  stage,
  type FailureTolerance,
  type FanOutContext,
  type FanOutSource,
  type FinalizeContext,
  type JobDefinition,
  type JobParams,
  type JobResult,
  type RetryPolicy,
  type StageDefinition,
  type TaskContext,
  type TaskDefinition,
  type TaskResult,
} from './define.js';
export { createSwitchyard, type Switchyard } from './engine/switchyard.js';
export type * from './engine/types.js';
export type { BatchingOptions } from './engine/batching.js';
export { consoleLogger, silentLogger, type Logger } from './logger.js';
