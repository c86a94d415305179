/**
 * `@switchyard/core`: what an application imports — job and task definitions, `createSwitchyard`,
 * the views and options it takes and returns, errors, the in-memory drivers and secret values.
 * Driver authors: `@switchyard/core/driver`; the HTTP API: `@switchyard/core/http`; conformance
 * suites and fault injection: `@switchyard/core/testing`.
 * @module
 */
export {
  type ConcurrencyLimit,
  defineJob,
  defineSchedule,
  defineTask,
  type FailureTolerance,
  type FanOutContext,
  type FanOutSource,
  type FinalizeContext,
  type Flat,
  type JobDefinition,
  type JobInput,
  type JobOutputs,
  type JobParams,
  type JobResult,
  type JobStages,
  type NewStageName,
  type NoStages,
  type RateLimit,
  type RetryPolicy,
  type StageDefinition,
  type StageOutputs,
  stage,
  type TaskContext,
  type TaskDefinition,
  type TaskResult,
  type TypedFanOutContext,
  type TypedStage,
} from './define.js';
export type {
  AnyJob,
  JobId,
  JobName,
  JobNamed,
  JobViewOf,
  NamedJob,
  Switchyard,
  UntypedJobId,
} from './engine/api.js';
export type { BatchingOptions } from './engine/batching.js';
export { createSwitchyard } from './engine/switchyard.js';
export type * from './engine/types.js';
export {
  type ErrorInfo,
  type FieldIssue,
  isSwitchyardError,
  JobFailedError,
  MalformedMessageError,
  SerializationError,
  SwitchyardError,
  type SwitchyardErrorCode,
  type SwitchyardErrorOptions,
  TaskTimeoutError,
  ValidationError,
} from './errors.js';
export { consoleLogger, type Logger, silentLogger } from './logger.js';
export { memoryStore } from './memory/memory-store.js';
export { type MemoryTransportOptions, memoryTransport } from './memory/memory-transport.js';
export { type Duration, type DurationUnit, parseDuration } from './operations/duration.js';
export { INSTANT_RANGE, isStorableInstant, parseInstant } from './operations/instant.js';
export type { RetentionOptions } from './operations/purge.js';
export type { RetryOptions, RetryResult } from './operations/retry.js';
export {
  CANCELLABLE_STATUSES,
  FINISHED_JOB_STATUSES,
  JOB_STATUSES,
  RETRYABLE_STATUSES,
} from './operations/statuses.js';
export { isPriority, PRIORITIES, type Priority } from './priority.js';
export { SecretValue } from './secrets/secret-value.js';
export { type EnvSecretsOptions, envSecrets, type SecretInput } from './secrets/sources.js';
export type { SecretRef, SecretSource } from './secrets/types.js';
export type {
  JobPage,
  JobSummary,
  ListJobsFilter,
  ListTasksOptions,
  PurgeFilter,
  StageStatus,
  TaskPage,
  TaskRecord,
  TaskStatus,
  TasksWaiting,
  TransportMetrics,
} from './store.js';
export { DEFAULT_JOB_PAGE, MAX_JOB_PAGE } from './store.js';
export {
  ATTR as TELEMETRY_ATTRIBUTES,
  INSTRUMENTATION_SCOPE,
  SPAN as SPAN_NAMES,
} from './telemetry/attributes.js';
export type { TelemetryOptions } from './telemetry/telemetry.js';
export type { QueueKind, SettlementAction } from './transport.js';
