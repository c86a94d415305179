export {
  defineJob,
  defineTask,
  type FailureTolerance,
  type FanOutContext,
  type FanOutSource,
  type FinalizeContext,
  type JobDefinition,
  type JobParams,
  type JobResult,
  type RetryPolicy,
  type StageDefinition,
  stage,
  type TaskContext,
  type TaskDefinition,
  type TaskResult,
} from './define.js';
export type { Switchyard } from './engine/api.js';
export type { BatchingOptions } from './engine/batching.js';
export { createSwitchyard } from './engine/switchyard.js';
export type * from './engine/types.js';
export {
  decodeEnvelope,
  ENVELOPE_VERSION,
  type Envelope,
  encodeEnvelope,
  MAX_PACKED_TASKS,
  type PackedTask,
  type StageEnvelope,
  type TaskEnvelope,
  type TasksEnvelope,
} from './envelope.js';
export * from './errors.js';
export * from './http/index.js';
export { deriveJobId, parseTaskId, taskId } from './ids.js';
export { consoleLogger, type Logger, silentLogger } from './logger.js';
export { memoryStore } from './memory/memory-store.js';
export { type MemoryTransportOptions, memoryTransport } from './memory/memory-transport.js';
export * from './secrets/index.js';
export type * from './store.js';
export { DEFAULT_JOB_PAGE, jobPageSize, MAX_JOB_PAGE, MAX_REDRIVE_DOUBLINGS } from './store.js';
export type * from './transport.js';
