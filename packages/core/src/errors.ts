/**
 * Every error Switchyard throws on purpose is a {@link SwitchyardError} with a stable `code`.
 * Tell errors apart by `code` (or with {@link isSwitchyardError}), never by message text.
 */
export type SwitchyardErrorCode =
  /** Input given to an API (params, options, a configuration value) failed validation. */
  | 'INVALID_INPUT'
  /** A job name that no `defineJob` registered. */
  | 'UNKNOWN_JOB'
  /** A job id that the store does not hold. */
  | 'JOB_NOT_FOUND'
  /** A transport name that was not configured. */
  | 'UNKNOWN_TRANSPORT'
  /** A value (params, input, result) that cannot be stored as JSON. */
  | 'NOT_SERIALIZABLE'
  /** A message that is not a Switchyard envelope this version understands. */
  | 'MALFORMED_MESSAGE'
  /** A task handler did not finish within its `timeoutMs`. */
  | 'TASK_TIMEOUT'
  /** A job failed: one of its stages had more failed tasks than it tolerates. */
  | 'JOB_FAILED'
  /** The job was cancelled. */
  | 'JOB_CANCELLED'
  /** A schedule name that no configured schedule has. */
  | 'UNKNOWN_SCHEDULE'
  /** The job did not finish by its deadline (`deadlineMs`) and was cancelled. */
  | 'DEADLINE_EXCEEDED'
  /** An operation was aborted through its `AbortSignal`. */
  | 'ABORTED'
  /** A secret could not be resolved. */
  | 'SECRET_NOT_FOUND'
  /** Authentication or authorisation against a backend failed. */
  | 'AUTH_FAILED'
  /** A backend (database, queue service) failed or is unreachable. */
  | 'BACKEND_ERROR'
  /** Configuration (options or environment variables) is missing or malformed. */
  | 'CONFIG_ERROR'
  /** The Switchyard (or a driver) was used after `close()`. */
  | 'CLOSED';

const BRAND = Symbol.for('switchyard.error');

/** One field-level problem found while validating input. */
export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `params.n` (empty for the value itself). */
  path: string;
  message: string;
}

export interface SwitchyardErrorOptions {
  cause?: unknown;
  /** Field-level problems, for `INVALID_INPUT` and `CONFIG_ERROR`. */
  issues?: FieldIssue[];
}

/** Base class of every error Switchyard throws on purpose. */
export class SwitchyardError extends Error {
  readonly code: SwitchyardErrorCode;
  readonly issues: FieldIssue[] | undefined;

  constructor(code: SwitchyardErrorCode, message: string, options: SwitchyardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SwitchyardError';
    this.code = code;
    this.issues = options.issues;
    Object.defineProperty(this, BRAND, { value: true });
  }

  toJSON(): { code: SwitchyardErrorCode; message: string; issues?: FieldIssue[] } {
    return this.issues
      ? { code: this.code, message: this.message, issues: this.issues }
      : { code: this.code, message: this.message };
  }
}

/** True for any Switchyard error, even one thrown by another copy of the library. */
export function isSwitchyardError(err: unknown): err is SwitchyardError {
  return (
    typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[BRAND] === true
  );
}

/** Input failed validation; `issues` names each field. */
export class ValidationError extends SwitchyardError {
  constructor(message: string, issues: FieldIssue[] = [], options: { cause?: unknown } = {}) {
    super('INVALID_INPUT', message, { ...options, issues });
    this.name = 'ValidationError';
  }
}

/** A value that cannot be stored or sent as JSON (a cycle, a BigInt, a function …). */
export class SerializationError extends SwitchyardError {
  constructor(message: string, options: { cause?: unknown; path?: string } = {}) {
    super('NOT_SERIALIZABLE', message, {
      cause: options.cause,
      issues: options.path === undefined ? undefined : [{ path: options.path, message }],
    });
    this.name = 'SerializationError';
  }
}

/** A message that is not a Switchyard envelope; it is dead-lettered with this message as the reason. */
export class MalformedMessageError extends SwitchyardError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('MALFORMED_MESSAGE', message, options);
    this.name = 'MalformedMessageError';
  }
}

/** A task attempt ran longer than its `timeoutMs`. */
export class TaskTimeoutError extends SwitchyardError {
  constructor(taskId: string, timeoutMs: number) {
    super('TASK_TIMEOUT', `task ${taskId} timed out after ${timeoutMs} ms`);
    this.name = 'TaskTimeoutError';
  }
}

/** The job ended in `failed`; `failedTasks` lists (some of) the task ids that failed. */
export class JobFailedError extends SwitchyardError {
  readonly jobId: string;
  readonly failedTasks: string[];
  constructor(jobId: string, message: string, failedTasks: string[] = []) {
    super('JOB_FAILED', message);
    this.name = 'JobFailedError';
    this.jobId = jobId;
    this.failedTasks = failedTasks;
  }
}

/** Serializable description of an error, as recorded on tasks and jobs. */
export interface ErrorInfo {
  name: string;
  message: string;
  code?: string;
  /** Extra detail, e.g. the failed task ids of a failed job. */
  details?: unknown;
}

/**
 * Turns anything thrown into an {@link ErrorInfo} (no stack: it is stored and shown to API users).
 * Never throws: a value whose properties or conversion throw becomes a fixed message.
 */
export function toErrorInfo(err: unknown): ErrorInfo {
  // Total: a handler may throw anything, and an attempt whose error cannot be recorded would
  // never settle its message nor give its slot back.
  try {
    if (err instanceof Error) {
      const { name, message } = err;
      const code = (err as { code?: unknown }).code;
      const info = {
        name: typeof name === 'string' ? name : 'Error',
        message: typeof message === 'string' ? message : safeString(message),
      };
      return typeof code === 'string' ? { ...info, code } : info;
    }
    return { name: 'Error', message: typeof err === 'string' ? err : safeString(err) };
  } catch {
    return { name: 'Error', message: UNREADABLE };
  }
}

/** The message of a thrown value whose own properties throw when read. */
const UNREADABLE = 'a thrown value that cannot be read (its properties or conversion threw)';

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
