/**
 * The envelope decoder under 10,000+ random inputs: it returns a well-formed envelope or throws a
 * MalformedMessageError, never anything else.
 */
import { MalformedMessageError } from '@switchyard/core';
import { decodeEnvelope, type Envelope } from '@switchyard/core/driver';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/** A well-formed W3C traceparent (version 00). */
function traceparent() {
  return fc
    .tuple(
      fc.stringMatching(/^[0-9a-f]{32}$/),
      fc.stringMatching(/^[0-9a-f]{16}$/),
      fc.constantFrom('00', '01'),
    )
    .map(([t, s, f]) => `00-${t}-${s}-${f}`);
}

const nearEnvelope = fc.record(
  {
    v: fc.oneof(fc.constant(1), fc.constant(2), fc.constant('1'), fc.constant(null), fc.double()),
    kind: fc.oneof(
      fc.constant('task'),
      fc.constant('stage'),
      fc.constant('tasks'),
      fc.string(),
      fc.anything(),
    ),
    jobId: fc.oneof(fc.string({ maxLength: 600 }), fc.anything()),
    stage: fc.oneof(fc.integer({ min: -5, max: 20_000 }), fc.double(), fc.anything()),
    taskId: fc.oneof(fc.string({ maxLength: 600 }), fc.anything()),
    input: fc.anything(),
    ref: fc.oneof(fc.string(), fc.anything()),
    attempts: fc.oneof(fc.integer({ min: -3, max: 100 }), fc.double(), fc.anything()),
    tasks: fc.oneof(
      fc.array(
        fc.record(
          { index: fc.oneof(fc.integer({ min: -3, max: 1e6 }), fc.double(), fc.anything()) },
          { requiredKeys: [] },
        ),
      ),
      fc.anything(),
    ),
    resumed: fc.oneof(fc.constant(true), fc.constant(false), fc.anything()),
    deadLetter: fc.oneof(
      fc.record({ reason: fc.anything(), description: fc.anything() }, { requiredKeys: [] }),
      fc.anything(),
    ),
    traceparent: fc.oneof(traceparent(), fc.string({ maxLength: 80 }), fc.anything()),
    tracestate: fc.oneof(fc.string({ maxLength: 600 }), fc.anything()),
    __proto__: fc.anything(),
  },
  { requiredKeys: [] },
);

const id = fc.string({ minLength: 1, maxLength: 80 });
const validEnvelope = fc.oneof(
  fc.record(
    {
      v: fc.constant(1),
      kind: fc.constant('stage'),
      jobId: id,
      stage: fc.nat(10_000),
      traceparent: traceparent(),
      tracestate: fc.constant('vendor=abc'),
    },
    { requiredKeys: ['v', 'kind', 'jobId', 'stage'] },
  ),
  fc.record(
    {
      v: fc.constant(1),
      kind: fc.constant('task'),
      jobId: id,
      stage: fc.nat(10_000),
      taskId: id,
      input: fc.jsonValue(),
      ref: id,
      attempts: fc.nat(100),
      traceparent: traceparent(),
    },
    { requiredKeys: ['v', 'kind', 'jobId', 'stage', 'taskId'] },
  ),
  fc.record(
    {
      v: fc.constant(1),
      kind: fc.constant('tasks'),
      jobId: id,
      stage: fc.nat(10_000),
      tasks: fc.array(
        fc.record({ index: fc.nat(1_000_000), input: fc.jsonValue() }, { requiredKeys: ['index'] }),
        { minLength: 1, maxLength: 20 },
      ),
      resumed: fc.constant(true),
    },
    { requiredKeys: ['v', 'kind', 'jobId', 'stage', 'tasks'] },
  ),
);

const inputs = fc.oneof(
  validEnvelope,
  validEnvelope.map((o) => JSON.stringify(o)),
  fc.anything(),
  fc.string(),
  fc.json(),
  fc.uint8Array({ maxLength: 256 }),
  nearEnvelope,
  nearEnvelope.map((o) => JSON.stringify(o) ?? ''),
  nearEnvelope.map((o) => new TextEncoder().encode(JSON.stringify(o) ?? '')),
);

function wellFormed(e: Envelope): boolean {
  const id = (s: unknown) => typeof s === 'string' && s.length > 0 && s.length <= 512;
  if (e.v !== 1 || !id(e.jobId) || !Number.isInteger(e.stage) || e.stage < 0) return false;
  // A trace field is kept only well formed (a malformed one is dropped, the message kept).
  if (
    e.traceparent !== undefined &&
    !/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(e.traceparent)
  )
    return false;
  if (e.tracestate !== undefined && (e.traceparent === undefined || e.tracestate.length > 512))
    return false;
  if (e.kind === 'stage')
    return Object.keys(e).length === 4 + (e.traceparent ? 1 : 0) + (e.tracestate ? 1 : 0);
  if (e.kind === 'tasks') {
    return (
      e.tasks.length > 0 &&
      e.tasks.length <= 1000 &&
      e.tasks.every((t) => Number.isInteger(t.index) && t.index >= 0) &&
      (e.resumed === undefined || e.resumed === true)
    );
  }
  return (
    e.kind === 'task' &&
    id(e.taskId) &&
    (e.attempts === undefined || (Number.isInteger(e.attempts) && e.attempts >= 0)) &&
    (e.deadLetter === undefined ||
      (typeof e.deadLetter.reason === 'string' && e.deadLetter.reason.length > 0))
  );
}

describe('decodeEnvelope fuzz', () => {
  it('12,000 random inputs: an envelope or a MalformedMessageError, nothing else', () => {
    let decoded = 0;
    let rejected = 0;
    fc.assert(
      fc.property(inputs, (input) => {
        try {
          const e = decodeEnvelope(input);
          decoded++;
          return wellFormed(e);
        } catch (err) {
          rejected++;
          return err instanceof MalformedMessageError && err.code === 'MALFORMED_MESSAGE';
        }
      }),
      { numRuns: 12_000 },
    );
    console.info(`[chaos fuzz] decodeEnvelope: ${decoded} decoded, ${rejected} rejected`);
    expect(decoded + rejected).toBeGreaterThanOrEqual(12_000);
    expect(decoded).toBeGreaterThan(0);
  });
});
