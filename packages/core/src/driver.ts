/**
 * `@switchyard/core/driver`: what a driver author implements and the helpers drivers share — the
 * `Store` and `Transport` contracts with their records, the message envelope, task ids, and the
 * secret helpers for rotating credentials. Applications import `@switchyard/core` instead.
 * @module
 */
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
export { toErrorInfo } from './errors.js';
export { deriveJobId, parseTaskId, taskId } from './ids.js';
export {
  type CachedSecret,
  type CachedSecretOptions,
  cachedSecret,
  toCachedSecret,
  withSecretRotation,
} from './secrets/cached.js';
export { knownSecretValues, redactSecrets, rememberSecretValue } from './secrets/redact.js';
export { defaultEnvVariable, firstOf, isSecretRef } from './secrets/sources.js';
export type {
  ClaimRef,
  CompleteTasksResult,
  JobRecord,
  ListTasksOptions,
  NewJob,
  NewTask,
  PackAdmission,
  StageCompletion,
  StageRecord,
  Store,
  StoredResult,
  StuckWork,
  TaskClaim,
  TaskOutcome,
  TaskPage,
  TaskRecord,
  TaskRef,
  TaskRetry,
  TaskStatus,
  TerminalTaskStatus,
} from './store.js';
export { MAX_REDRIVE_DOUBLINGS } from './store.js';
export type * from './transport.js';
