/**
 * Tracing under crashes (`--otel`). Each worker registers an OpenTelemetry SDK as an application
 * would (global tracer and meter providers, the async-hooks context manager) before it creates its
 * Switchyard, and exports every span as a JSON line on stdout as it ends (a pipe write is
 * synchronous on Linux: a span ended is a span exported, whenever the SIGKILL comes). It also
 * announces every root span as it starts, so a trace a worker began is known even if that worker
 * died before the span ended. The harness submits under its own SDK (the submit span's trace is
 * the job's), then checks every exported span ({@link TraceCheck}).
 * @module
 */
import { context, metrics, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type Span,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';

/** A span as a worker exports it (the attributes the checks read). */
export interface SpanLine {
  ev: 'span';
  name: string;
  kind: number;
  trace: string;
  span: string;
  parent?: string;
  startMs: number;
  endMs: number;
  job?: string;
  stage?: number;
  index?: number;
  attempt?: number;
  outcome?: string;
}

/** A root span started (its trace begins in a worker, not at submit). */
export interface RootLine {
  ev: 'root';
  trace: string;
}

const ms = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;

/** Registers the SDK globally in a worker; `write` sends one JSON line to the harness. */
export function registerWorkerTelemetry(write: (line: SpanLine | RootLine) => void): void {
  const exporter: SpanProcessor = {
    onStart(span: Span) {
      if (!span.parentSpanContext) write({ ev: 'root', trace: span.spanContext().traceId });
    },
    onEnd(span: ReadableSpan) {
      const a = span.attributes;
      const line: SpanLine = {
        ev: 'span',
        name: span.name,
        kind: span.kind,
        trace: span.spanContext().traceId,
        span: span.spanContext().spanId,
        startMs: ms(span.startTime),
        endMs: ms(span.endTime),
      };
      if (span.parentSpanContext) line.parent = span.parentSpanContext.spanId;
      if (typeof a['switchyard.job.id'] === 'string') line.job = a['switchyard.job.id'];
      if (typeof a['switchyard.stage'] === 'number') line.stage = a['switchyard.stage'];
      if (typeof a['switchyard.task.index'] === 'number') line.index = a['switchyard.task.index'];
      if (typeof a['switchyard.attempt'] === 'number') line.attempt = a['switchyard.attempt'];
      if (typeof a['switchyard.task.outcome'] === 'string')
        line.outcome = a['switchyard.task.outcome'];
      write(line);
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [exporter] }));
  // Metrics go through a real SDK too (read every second, kept in memory): the instruments run
  // under crashes; their counts die with the worker, so nothing is checked from them.
  metrics.setGlobalMeterProvider(
    new MeterProvider({
      readers: [
        new PeriodicExportingMetricReader({
          exporter: new InMemoryMetricExporter(AggregationTemporality.DELTA),
          exportIntervalMillis: 1000,
        }),
      ],
    }),
  );
}

/** The harness's submitter SDK: the submit spans, by job, give each job's trace id. */
export function submitterTelemetry() {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  return {
    tracerProvider,
    /** The traces of the job's submit spans (one per submit call that got that far). */
    tracesOf(jobId: string): string[] {
      return exporter
        .getFinishedSpans()
        .filter(
          (s) => s.name === 'switchyard submit' && s.attributes['switchyard.job.id'] === jobId,
        )
        .map((s) => s.spanContext().traceId);
    },
  };
}

const KIND: Record<string, number> = {
  'switchyard submit': SpanKind.PRODUCER,
  'switchyard stage': SpanKind.CONSUMER,
  'switchyard finalize': SpanKind.CONSUMER,
  'switchyard fan-out': SpanKind.PRODUCER,
  'switchyard task': SpanKind.CONSUMER,
  'switchyard barrier': SpanKind.INTERNAL,
  'switchyard advance': SpanKind.INTERNAL,
};
const OUTCOMES = new Set(['succeeded', 'retry', 'dead_letter', 'released', 'skipped']);
const TRACE_ID = /^(?!0{32})[0-9a-f]{32}$/;
const SPAN_ID = /^(?!0{16})[0-9a-f]{16}$/;

/** What the campaign's spans showed. */
export interface TraceReport {
  spans: number;
  taskSpans: number;
  /** Task spans in their job's trace (the one its submit began). */
  inJobTrace: number;
  /** Task spans in a trace a worker began: the context was lost in between (a reconciler
   * re-drive sends without one; a restarted worker advances a stage it has no context for). */
  inWorkerTrace: number;
  /** Task spans without a parent: their message carried no trace context. */
  withoutParent: number;
  violations: string[];
}

/**
 * Collects every worker's spans and checks them once the campaign is over:
 * - each span is well-formed: valid ids, a known name with its kind, an end not before its start;
 *   a task span names its job, stage, index, attempt ≥ 1 and a known outcome;
 * - a span of a job with a parent is in that job's trace or in a trace a worker began, never in
 *   another job's, never in a trace nobody began (a garbled or crossed context);
 * - every job has task spans in its own trace (the context survived at least from submit).
 */
export class TraceCheck {
  private readonly spans: SpanLine[] = [];
  private readonly workerTraces = new Set<string>();
  private readonly jobTraces = new Map<string, Set<string>>();

  /** A worker's stdout line (any kind: only spans and roots are kept). */
  line(line: SpanLine | RootLine | { ev: string; [key: string]: unknown }): void {
    if (line.ev === 'span') this.spans.push(line as SpanLine);
    else if (line.ev === 'root') this.workerTraces.add((line as RootLine).trace);
  }

  submitted(jobId: string, traces: readonly string[]): void {
    this.jobTraces.set(jobId, new Set(traces));
  }

  report(): TraceReport {
    const report: TraceReport = {
      spans: this.spans.length,
      taskSpans: 0,
      inJobTrace: 0,
      inWorkerTrace: 0,
      withoutParent: 0,
      violations: [],
    };
    const bad = (what: string, s: SpanLine) =>
      report.violations.push(`otel: ${what}: ${JSON.stringify(s)}`);
    const jobOfTrace = new Map<string, string>();
    for (const [job, traces] of this.jobTraces) for (const t of traces) jobOfTrace.set(t, job);
    const withTask = new Set<string>();
    for (const s of this.spans) {
      if (!TRACE_ID.test(s.trace) || !SPAN_ID.test(s.span)) bad('invalid trace or span id', s);
      if (s.parent !== undefined && !SPAN_ID.test(s.parent)) bad('invalid parent span id', s);
      if (KIND[s.name] !== s.kind) bad('unknown name or wrong kind', s);
      if (!(s.endMs >= s.startMs)) bad('ends before it starts', s);
      if (s.name === 'switchyard task') {
        report.taskSpans++;
        if (
          s.job === undefined ||
          s.stage === undefined ||
          s.index === undefined ||
          !(s.attempt !== undefined && s.attempt >= 1) ||
          !OUTCOMES.has(s.outcome ?? '')
        )
          bad('task span without its job, stage, index, attempt or outcome', s);
        if (s.parent === undefined) report.withoutParent++;
      }
      if (s.job === undefined || s.parent === undefined) continue;
      const own = this.jobTraces.get(s.job);
      if (!own) continue; // a job of no run of this campaign (none are expected)
      const other = jobOfTrace.get(s.trace);
      if (own.has(s.trace)) {
        if (s.name === 'switchyard task') {
          report.inJobTrace++;
          withTask.add(s.job);
        }
      } else if (other !== undefined) bad(`in the trace of job ${other}`, s);
      else if (this.workerTraces.has(s.trace)) {
        if (s.name === 'switchyard task') report.inWorkerTrace++;
      } else bad('in a trace neither its submit nor any worker began', s);
    }
    for (const job of this.jobTraces.keys())
      if (!withTask.has(job))
        report.violations.push(`otel: job ${job} has no task span in its trace`);
    if (report.violations.length > 20)
      report.violations.splice(20, Infinity, `otel: … ${report.violations.length - 20} more`);
    return report;
  }
}
