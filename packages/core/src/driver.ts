/**
 * `@switchyard/core/driver`: what a driver author implements and the helpers drivers share — the
 * `Store` and `Transport` contracts with their records, the message envelope, task ids, and the
 * secret helpers for rotating credentials. Applications import `@switchyard/core` instead.
 * @module
 */

export { type WithCostOptions, withCost } from './cost.js';
export {
  type DeadLetterNote,
  decodeEnvelope,
  ENVELOPE_VERSION,
  type Envelope,
  encodeEnvelope,
  MAX_PACKED_TASKS,
  type PackedTask,
  packHead,
  type StageEnvelope,
  type TaskEnvelope,
  type TasksEnvelope,
} from './envelope.js';
export { type ErrorInfo, toErrorInfo } from './errors.js';
export { deriveJobId, parseTaskId, taskId } from './ids.js';
export {
  byPriority,
  isPriority,
  LaneSchedule,
  PRIORITIES,
  PRIORITY_WEIGHTS,
  type Priority,
  priorityIssue,
} from './priority.js';
export {
  type CachedSecret,
  type CachedSecretOptions,
  cachedSecret,
  toCachedSecret,
  withSecretRotation,
} from './secrets/cached.js';
export { knownSecretValues, redactSecrets, rememberSecretValue } from './secrets/redact.js';
export {
  defaultEnvVariable,
  firstOf,
  isSecretRef,
  type SecretInput,
} from './secrets/sources.js';
export type { SecretRef, SecretSource } from './secrets/types.js';
export type {
  ClaimRef,
  CompleteTasksResult,
  FlowAdmission,
  FlowControlCapability,
  FlowDecision,
  JobPage,
  JobRecord,
  JobStatus,
  JobSummary,
  ListJobsFilter,
  ListTasksOptions,
  NewJob,
  NewTask,
  PackAdmission,
  PurgeBatch,
  PurgeFilter,
  PurgeResult,
  RateRequest,
  ReleasedJob,
  ReleasedTasks,
  ReopenedTasks,
  ReopenTasksRequest,
  ScheduleAdvance,
  ScheduleState,
  SlotRef,
  SlotRequest,
  StageCompletion,
  StageRecord,
  StageStatus,
  StageWaiting,
  StageWindow,
  Store,
  StoredResult,
  StuckWork,
  TaskClaim,
  TaskOutcome,
  TaskPage,
  TaskRecord,
  TaskRef,
  TaskRetry,
  TaskRowsCapability,
  TaskStatus,
  TasksWaiting,
  TerminalTaskStatus,
  TransportMetrics,
} from './store.js';
export { jobPageSize, MAX_REDRIVE_DOUBLINGS } from './store.js';
export type * from './transport.js';
export { UsageCounter } from './usage.js';
export { Wakeups } from './util/wakeups.js';
