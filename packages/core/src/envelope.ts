/**
 * Wire format: small, versioned JSON envelopes. Decoding is strict and total: anything that is
 * not a valid envelope throws a {@link MalformedMessageError} naming what is wrong.
 * @module
 */
import { MalformedMessageError } from './errors.js';

export const ENVELOPE_VERSION = 1;

/** "Fan out stage `stage` of job `jobId`" — or, with `stage` equal to the stage count, "finish the job". */
export interface StageEnvelope {
  v: 1;
  kind: 'stage';
  jobId: string;
  stage: number;
}

/** "Run task `taskId`". `input` inline when small, otherwise `ref` names a claim-check payload. */
export interface TaskEnvelope {
  v: 1;
  kind: 'task';
  jobId: string;
  stage: number;
  taskId: string;
  input?: unknown;
  ref?: string;
}

export type Envelope = StageEnvelope | TaskEnvelope;

const MAX_ID_LENGTH = 512;

export function encodeEnvelope(envelope: Envelope): string {
  return JSON.stringify(envelope);
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
  if (obj.kind === 'stage') return { v: 1, kind: 'stage', jobId, stage };
  if (obj.kind === 'task') {
    const taskId = requireId(obj, 'taskId');
    const envelope: TaskEnvelope = { v: 1, kind: 'task', jobId, stage, taskId };
    if (obj.ref !== undefined) envelope.ref = requireId(obj, 'ref');
    if ('input' in obj) envelope.input = obj.input;
    return envelope;
  }
  throw new MalformedMessageError(
    `unknown envelope kind ${JSON.stringify(obj.kind) ?? 'undefined'}`,
  );
}

function requireId(obj: Record<string, unknown>, field: string): string {
  const value = obj[field];
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) {
    throw new MalformedMessageError(`envelope field "${field}" must be a non-empty string`);
  }
  return value;
}
