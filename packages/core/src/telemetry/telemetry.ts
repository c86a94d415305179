/**
 * A Switchyard's OpenTelemetry instruments, created once per Switchyard through
 * `@opentelemetry/api` only: until the application registers an SDK every call is a no-op, so an
 * application that does not use OpenTelemetry pays for nothing but the calls.
 * @module
 */
import {
  type Attributes,
  type Context,
  type Counter,
  type Histogram,
  INVALID_SPAN_CONTEXT,
  type MeterProvider,
  metrics,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
  type UpDownCounter,
} from '@opentelemetry/api';
import type { ErrorInfo } from '../errors.js';
import { ATTR, INSTRUMENTATION_SCOPE, type TaskOutcomeName } from './attributes.js';

/**
 * Where a Switchyard's spans and metrics go.
 *
 * Metrics instruments are created with the Switchyard: register the application's meter provider
 * (e.g. start the OpenTelemetry Node SDK) before `createSwitchyard`, or pass it here.
 */
export interface TelemetryOptions {
  /** @defaultValue the global tracer provider of `@opentelemetry/api` */
  tracerProvider?: TracerProvider;
  /** @defaultValue the global meter provider of `@opentelemetry/api` */
  meterProvider?: MeterProvider;
}

/** The attribute sets of one transport, built once: metrics calls allocate nothing per task. */
export interface TransportAttributes {
  readonly base: Attributes;
  readonly byOutcome: Readonly<Record<TaskOutcomeName, Attributes>>;
  /** Task attempts this process settled on the transport (what its counted operations paid for). */
  settled: number;
}

/** A span to start: its name, kind, parent and (built only when it records) attributes. */
export interface SpanSpec {
  name: string;
  kind: SpanKind;
  parent: Context;
  attributes?: () => Attributes;
}

/** A span that records nothing, shared by every task while no tracer could record one. */
export const NO_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** The delegate of a global tracer provider no SDK registered with (the API's no-op). */
const NOOP_DELEGATE = new ProxyTracerProvider().getDelegate();

/** Tasks between two looks at the global tracer provider (see {@link Telemetry.tracing}). */
const TRACING_RECHECK = 1024;

/** Most jobs whose trace context a worker remembers (the oldest is forgotten first). */
const MAX_JOB_CONTEXTS = 10_000;
const OUTCOMES: readonly TaskOutcomeName[] = [
  'succeeded',
  'retry',
  'dead_letter',
  'released',
  'skipped',
];

export class Telemetry {
  readonly tracer: Tracer;
  /** Handler run time of an attempt, seconds. */
  readonly taskDuration: Histogram;
  /** From a task message's enqueueing to its processing, seconds (transports that report it). */
  readonly queueWait: Histogram;
  readonly tasksCompleted: Counter;
  readonly tasksRetried: Counter;
  readonly tasksPoisoned: Counter;
  readonly tasksTimedOut: Counter;
  readonly jobsStarted: Counter;
  readonly jobsFinished: Counter;
  /** Tasks a fan-out sent: its rate is the fan-out rate. */
  readonly fanOutTasks: Counter;
  readonly redrives: Counter;
  /** Handlers running in this process. */
  readonly inFlight: UpDownCounter;
  private readonly transports = new Map<string, TransportAttributes>();
  /** A tracer provider was given: spans may record. */
  private readonly ownTracer: boolean;
  private tracingNow = true;
  private untilRecheck = 0;
  private readonly jobContexts = new Map<string, { stage: number; context: Context }>();

  constructor(
    options: TelemetryOptions,
    /** The `messaging.system` of a configured transport, by its name. */
    private readonly systemOf: (transport: string) => string,
  ) {
    this.ownTracer = options.tracerProvider !== undefined;
    this.tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(
      INSTRUMENTATION_SCOPE,
    );
    const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(
      INSTRUMENTATION_SCOPE,
    );
    this.taskDuration = meter.createHistogram('switchyard.task.duration', {
      description: 'Run time of a task attempt',
      unit: 's',
    });
    this.queueWait = meter.createHistogram('switchyard.task.queue_wait', {
      description: 'Time from a task message being enqueued to its processing',
      unit: 's',
    });
    this.tasksCompleted = meter.createCounter('switchyard.tasks.completed', {
      description: 'Tasks that succeeded',
      unit: '{task}',
    });
    this.tasksRetried = meter.createCounter('switchyard.tasks.retried', {
      description: 'Failed attempts that will be retried',
      unit: '{attempt}',
    });
    this.tasksPoisoned = meter.createCounter('switchyard.tasks.poisoned', {
      description: 'Tasks that failed for good and were dead-lettered',
      unit: '{task}',
    });
    this.tasksTimedOut = meter.createCounter('switchyard.tasks.timed_out', {
      description: 'Attempts that exceeded their timeout',
      unit: '{attempt}',
    });
    this.jobsStarted = meter.createCounter('switchyard.jobs.started', {
      description: 'Jobs created by submit',
      unit: '{job}',
    });
    this.jobsFinished = meter.createCounter('switchyard.jobs.finished', {
      description: 'Jobs that ended, by status',
      unit: '{job}',
    });
    this.fanOutTasks = meter.createCounter('switchyard.fanout.tasks', {
      description: 'Tasks sent into the transport by fan-outs and their windows’ releases',
      unit: '{task}',
    });
    this.redrives = meter.createCounter('switchyard.reconciler.redrives', {
      description: 'Work the reconciler re-drove, by reason',
      unit: '{item}',
    });
    this.inFlight = meter.createUpDownCounter('switchyard.tasks.in_flight', {
      description: 'Task handlers running in this process',
      unit: '{task}',
    });
  }

  /**
   * Whether a task's span may record: a tracer provider was given, or an SDK registered the
   * global one. Without either every span is the API's no-op, and starting one per task costs
   * about 5 % of the engine's own time on the memory path, so tasks share {@link NO_SPAN} instead.
   * The global provider is looked at again every 1,024 tasks: an SDK registered after the
   * Switchyard was created is seen within them (and at once by tasks whose message carries a
   * trace context, as every message sent under the SDK does).
   */
  tracing(): boolean {
    if (this.ownTracer) return true;
    if (this.untilRecheck-- > 0) return this.tracingNow;
    this.untilRecheck = TRACING_RECHECK;
    const global = trace.getTracerProvider();
    this.tracingNow =
      !(global instanceof ProxyTracerProvider) || global.getDelegate() !== NOOP_DELEGATE;
    return this.tracingNow;
  }

  /** The attributes of a transport's metrics and spans (cached per transport). */
  transport(name: string): TransportAttributes {
    let attrs = this.transports.get(name);
    if (!attrs) {
      const base = { [ATTR.transport]: name, [ATTR.messagingSystem]: this.systemOf(name) };
      const byOutcome = {} as Record<TaskOutcomeName, Attributes>;
      for (const outcome of OUTCOMES) byOutcome[outcome] = { ...base, [ATTR.outcome]: outcome };
      attrs = { base, byOutcome, settled: 0 };
      this.transports.set(name, attrs);
    }
    return attrs;
  }

  /**
   * Starts a span under `parent`; `attributes` are built only when the span records (a sampled
   * out or no-op span costs no attribute object).
   */
  startSpan(
    name: string,
    kind: SpanKind,
    parent: Context,
    attributes: (() => Attributes) | undefined,
  ): Span {
    const span = this.tracer.startSpan(name, { kind }, parent);
    if (attributes && span.isRecording()) span.setAttributes(attributes());
    return span;
  }

  /**
   * Runs `fn` in a span under `parent`, ended when `fn` settles (with the error when it throws).
   * For steps that run once per stage or job, not per task.
   */
  async inSpan<T>(spec: SpanSpec, fn: (span: Span) => Promise<T>): Promise<T> {
    const span = this.startSpan(spec.name, spec.kind, spec.parent, spec.attributes);
    try {
      const result = await fn(span);
      span.end();
      return result;
    } catch (err) {
      endSpan(span, err);
      throw err;
    }
  }

  /**
   * Remembers a context in the job's trace, so that steps this worker runs for the job without
   * a message of it at hand (a stage advance from a barrier batch) join the job's trace. A later
   * stage's context replaces an earlier one's.
   */
  rememberJob(jobId: string, stage: number, context: Context): void {
    const known = this.jobContexts.get(jobId);
    if (known && known.stage >= stage) return;
    if (!known && this.jobContexts.size >= MAX_JOB_CONTEXTS)
      this.jobContexts.delete(this.jobContexts.keys().next().value!);
    this.jobContexts.set(jobId, { stage, context });
  }

  /** A context in the job's trace this worker has seen; the root context when it has seen none. */
  jobContext(jobId: string): Context {
    return this.jobContexts.get(jobId)?.context ?? ROOT_CONTEXT;
  }

  /** The reconciler re-drove `count` items of one kind (`reason`) on a transport. */
  redriven(transport: string, reason: string, count: number): void {
    this.redrives.add(count, { ...this.transport(transport).base, [ATTR.reason]: reason });
  }

  /** Task attempts this process settled on `transport` since it started. */
  settledOn(transport: string): number {
    return this.transports.get(transport)?.settled ?? 0;
  }

  /** A job ended (counted once, by the worker whose finish applied): its context is forgotten. */
  jobFinished(jobId: string, status: string, transport: string | undefined): void {
    this.jobContexts.delete(jobId);
    this.jobsFinished.add(1, {
      ...(transport === undefined ? {} : this.transport(transport).base),
      [ATTR.jobStatus]: status,
    });
  }
}

export { SpanKind };

/** Ends a span, with error status and an exception event when `error` is given. */
export function endSpan(span: Span, error?: ErrorInfo | unknown): void {
  if (error !== undefined && span.isRecording()) {
    const info = asErrorInfo(error);
    span.recordException({ name: info.name, message: info.message });
    span.setStatus({ code: SpanStatusCode.ERROR, message: info.message });
  }
  span.end();
}

function asErrorInfo(error: unknown): { name: string; message: string } {
  if (error instanceof Error) return { name: error.name, message: error.message };
  if (typeof error === 'object' && error !== null && 'message' in error) {
    const e = error as { name?: unknown; message: unknown };
    return {
      name: typeof e.name === 'string' ? e.name : 'Error',
      message: String(e.message),
    };
  }
  return { name: 'Error', message: String(error) };
}
