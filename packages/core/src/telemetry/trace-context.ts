/**
 * W3C Trace Context on the wire: a span's context as the `traceparent` / `tracestate` fields an
 * envelope carries, and back. Parsing is lenient by rule: a malformed header is dropped, never a
 * reason to fail the message that carries it.
 * @module
 */
import {
  type Context,
  createTraceState,
  isSpanContextValid,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  trace,
} from '@opentelemetry/api';

/** The trace fields of an envelope (and of an outgoing message, for transports that map them). */
export interface TraceFields {
  /** W3C `traceparent`: `00-<trace id>-<parent span id>-<flags>`. */
  traceparent: string;
  /** W3C `tracestate`, when the span context has one. */
  tracestate?: string;
}

/** Version 00 of the W3C header: lowercase hex, trace id and span id not all zeros. */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ALL_ZEROS = /^0+$/;
/** Longest `tracestate` accepted (32 members of the W3C limit fit in it). */
export const MAX_TRACESTATE_LENGTH = 512;

/** True when `value` is a well-formed version-00 `traceparent`. */
export function isTraceparent(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const match = TRACEPARENT.exec(value);
  return match !== null && !ALL_ZEROS.test(match[1]!) && !ALL_ZEROS.test(match[2]!);
}

/** True when `value` can be carried as a `tracestate` (printable ASCII, bounded). */
export function isTracestate(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length > 0 &&
    value.length <= MAX_TRACESTATE_LENGTH &&
    /^[\x20-\x7e]*$/.test(value)
  );
}

/** The wire fields of a span's context, or undefined when it is not valid (no SDK registered). */
export function traceFieldsOf(span: Span): TraceFields | undefined {
  const spanContext = span.spanContext();
  if (!isSpanContextValid(spanContext)) return undefined;
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
  const traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
  const state = spanContext.traceState?.serialize();
  return state ? { traceparent, tracestate: state } : { traceparent };
}

/** A context whose parent is the remote span the fields name; the root context when absent. */
export function contextFrom(fields: Partial<TraceFields> | undefined): Context {
  const traceparent = fields?.traceparent;
  if (traceparent === undefined) return ROOT_CONTEXT;
  const match = TRACEPARENT.exec(traceparent);
  if (!match) return ROOT_CONTEXT;
  const spanContext: SpanContext = {
    traceId: match[1]!,
    spanId: match[2]!,
    traceFlags: Number.parseInt(match[3]!, 16),
    isRemote: true,
  };
  if (fields?.tracestate) spanContext.traceState = createTraceState(fields.tracestate);
  return trace.setSpanContext(ROOT_CONTEXT, spanContext);
}
