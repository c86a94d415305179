/**
 * Wire format: small, versioned JSON envelopes. Decoding is strict and total: anything that is
 * not a valid envelope throws a {@link MalformedMessageError} naming what is wrong.
 * @module
 */
import { MalformedMessageError } from './errors.js';
import { parseTaskId } from './ids.js';
import { isTraceparent, isTracestate, type TraceFields } from './telemetry/trace-context.js';

export const ENVELOPE_VERSION = 1;

/**
 * The trace context of the span that sent a message (W3C Trace Context), so that a job is one
 * trace across workers and transports. Optional on every kind; a pack carries one for the pack.
 */
export type EnvelopeTrace = Partial<TraceFields>;

/** "Fan out stage `stage` of job `jobId`" — or, with `stage` equal to the stage count, "finish the job". */
export interface StageEnvelope extends EnvelopeTrace {
  v: 1;
  kind: 'stage';
  jobId: string;
  stage: number;
}

/** How a task split out of a pack is to be settled: its failure is recorded, only the dead-letter is owed. */
export interface DeadLetterNote {
  reason: string;
  description?: string;
}

/**
 * "Run task `taskId`". `input` inline when it fits the transport's message size; absent, the
 * input is read from the task row (a claim check).
 */
export interface TaskEnvelope extends EnvelopeTrace {
  v: 1;
  kind: 'task';
  jobId: string;
  stage: number;
  taskId: string;
  input?: unknown;
  /**
   * Attempts the task had when this message was sent (a retry split out of a pack, a reconciler
   * re-drive). Absent on a fan-out's own message, whose first delivery is admitted, not claimed.
   */
  attempts?: number;
  /**
   * Times the task was refused a key slot or a rate-limit start and sent again to wait (its wait
   * grows with them). Absent before the first refusal.
   */
  deferrals?: number;
  /** Set on a task split out of a pack to be dead-lettered: settle it so, without running it. */
  deadLetter?: DeadLetterNote;
}

/**
 * One task of a {@link TasksEnvelope}: its index in the pack's stage (the task id follows from the
 * job, stage and index, so a pack does not repeat the job id per task), and its input inline or,
 * when absent, by reference to the task row.
 */
export interface PackedTask {
  index: number;
  input?: unknown;
}

/** "Run these tasks of one stage": a pack (`batching.packTasks`), settled once all of them are. */
export interface TasksEnvelope extends EnvelopeTrace {
  v: 1;
  kind: 'tasks';
  jobId: string;
  stage: number;
  tasks: PackedTask[];
  /**
   * Set on a pack sent by a resumed fan-out: its tasks may have run already, so each is checked
   * on its own. Absent on a fan-out's first sending, whose first delivery is admitted as a pack.
   */
  resumed?: true;
}

export type Envelope = StageEnvelope | TaskEnvelope | TasksEnvelope;

const MAX_ID_LENGTH = 512;
/** Most tasks in one pack. */
export const MAX_PACKED_TASKS = 1000;

export function encodeEnvelope(envelope: Envelope): string {
  return JSON.stringify(envelope);
}

/**
 * A `tasks` envelope's text up to and including its list's `[`: the pack's entries (JSON objects,
 * comma-separated) and `]}` complete it. `tasks` is encoded last, so entries already encoded are
 * spliced in as they are, never parsed and encoded again.
 */
export function packHead(fields: Omit<TasksEnvelope, 'tasks'>): string {
  return encodeEnvelope({ ...fields, tasks: [] }).slice(0, -2);
}

/** Parses a message body (text, bytes, or an object a host already parsed) into an envelope. */
export function decodeEnvelope(body: unknown): Envelope {
  let value: unknown = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch (cause) {
      throw new MalformedMessageError('message body is not JSON', { cause });
    }
  } else if (body instanceof Uint8Array) {
    return decodeEnvelope(new TextDecoder('utf-8', { fatal: false }).decode(body));
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MalformedMessageError('message body is not a JSON object');
  }
  const obj = value as Record<string, unknown>;
  if (!Object.hasOwn(obj, 'v')) {
    throw new MalformedMessageError(
      'not a Switchyard envelope: a JSON object without the version field "v"',
    );
  }
  if (obj.v !== ENVELOPE_VERSION) {
    throw new MalformedMessageError(
      `unknown envelope version ${JSON.stringify(obj.v) ?? 'undefined'} (expected ${ENVELOPE_VERSION})`,
    );
  }
  const jobId = requireId(obj, 'jobId');
  const stage = obj.stage;
  if (typeof stage !== 'number' || !Number.isInteger(stage) || stage < 0 || stage > 10_000) {
    throw new MalformedMessageError('envelope field "stage" must be a non-negative integer');
  }
  if (obj.kind === 'stage') return withTrace(obj, { v: 1, kind: 'stage', jobId, stage });
  if (obj.kind === 'task') {
    const taskId = requireId(obj, 'taskId');
    // A task id names its job and stage (`<jobId>.<stage>.<index>`): an envelope whose fields
    // disagree with it is forged or corrupt, and must not reach another job's or stage's task.
    const named = parseTaskId(taskId);
    if (named?.jobId !== jobId || named.stage !== stage)
      throw new MalformedMessageError(
        'envelope field "taskId" must be <jobId>.<stage>.<index> of the envelope\'s job and stage',
      );
    const envelope: TaskEnvelope = { v: 1, kind: 'task', jobId, stage, taskId };
    if ('input' in obj) envelope.input = obj.input;
    if (obj.attempts !== undefined) envelope.attempts = requireCount(obj, 'attempts');
    if (obj.deferrals !== undefined) envelope.deferrals = requireCount(obj, 'deferrals');
    if (obj.deadLetter !== undefined) envelope.deadLetter = deadLetterNote(obj.deadLetter);
    return withTrace(obj, envelope);
  }
  if (obj.kind === 'tasks') {
    const tasks = obj.tasks;
    if (!Array.isArray(tasks) || tasks.length === 0 || tasks.length > MAX_PACKED_TASKS) {
      throw new MalformedMessageError(
        `envelope field "tasks" must be an array of 1 to ${MAX_PACKED_TASKS} tasks`,
      );
    }
    const envelope: TasksEnvelope = {
      v: 1,
      kind: 'tasks',
      jobId,
      stage,
      tasks: tasks.map((t: unknown, i) => {
        if (typeof t !== 'object' || t === null || Array.isArray(t)) {
          throw new MalformedMessageError(`envelope field "tasks[${i}]" must be an object`);
        }
        return packedTask(t as Record<string, unknown>, `tasks[${i}].`);
      }),
    };
    if (obj.resumed !== undefined) {
      if (obj.resumed !== true) {
        throw new MalformedMessageError('envelope field "resumed" must be true when present');
      }
      envelope.resumed = true;
    }
    return withTrace(obj, envelope);
  }
  throw new MalformedMessageError(
    `unknown envelope kind ${JSON.stringify(obj.kind) ?? 'undefined'}`,
  );
}

/**
 * Copies the trace fields that are well formed; a malformed one is dropped, never a reason to
 * fail the message (a `tracestate` without its `traceparent` means nothing and is dropped too).
 */
function withTrace<E extends Envelope>(obj: Record<string, unknown>, envelope: E): E {
  if (obj.traceparent === undefined || !isTraceparent(obj.traceparent)) return envelope;
  envelope.traceparent = obj.traceparent;
  if (isTracestate(obj.tracestate)) envelope.tracestate = obj.tracestate;
  return envelope;
}

function packedTask(obj: Record<string, unknown>, path: string): PackedTask {
  const index = requireCount(obj, 'index', path);
  return 'input' in obj ? { index, input: obj.input } : { index };
}

function deadLetterNote(value: unknown): DeadLetterNote {
  const note = value as Record<string, unknown> | null;
  if (
    typeof note !== 'object' ||
    note === null ||
    typeof note.reason !== 'string' ||
    note.reason.length === 0 ||
    note.reason.length > 200 ||
    (note.description !== undefined &&
      (typeof note.description !== 'string' || note.description.length > 2000))
  ) {
    throw new MalformedMessageError(
      'envelope field "deadLetter" must be { reason: string, description?: string }',
    );
  }
  return note.description === undefined
    ? { reason: note.reason }
    : { reason: note.reason, description: note.description };
}

/**
 * The largest count or index an envelope may carry: a store's 32-bit integer (PostgreSQL's
 * `integer`). A larger one is no task's, and a store would refuse it.
 */
const MAX_COUNT = 2_147_483_647;

function requireCount(obj: Record<string, unknown>, field: string, path = ''): number {
  const value = obj[field];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_COUNT) {
    throw new MalformedMessageError(
      `envelope field "${path}${field}" must be an integer from 0 to ${MAX_COUNT}`,
    );
  }
  return value;
}

function requireId(obj: Record<string, unknown>, field: string, path = ''): string {
  const value = obj[field];
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) {
    throw new MalformedMessageError(`envelope field "${path}${field}" must be a non-empty string`);
  }
  // No id holds U+0000 (no store can keep it): such a message can never be processed.
  if (value.includes('\u0000'))
    throw new MalformedMessageError(`envelope field "${path}${field}" must not contain U+0000`);
  return value;
}
