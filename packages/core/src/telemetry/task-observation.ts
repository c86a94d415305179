/**
 * One task attempt as OpenTelemetry sees it: its consumer span (a child of the span that sent its
 * message) and its metrics. Nothing is buffered per task: the span is exported by the SDK as it
 * ends, and a span the sampler drops costs no attributes.
 * @module
 */
import { type Context, context, type Span, SpanKind, trace } from '@opentelemetry/api';
import type { EnvelopeTrace } from '../envelope.js';
import type { ErrorInfo } from '../errors.js';
import { ATTR, SPAN, type TaskOutcomeName } from './attributes.js';
import { endSpan, NO_SPAN, type Telemetry, type TransportAttributes } from './telemetry.js';
import { contextFrom } from './trace-context.js';

/** The attempt a {@link TaskObservation} watches. */
export interface ObservedAttempt {
  jobId: string;
  stage: number;
  index: number;
  taskId: string;
  attempt: number;
}

/** How the attempt's message was settled. */
export interface ObservedSettlement {
  action: 'complete' | 'retry' | 'deadLetter';
  reason?: string;
}

/** How the handler's run ended, as far as telemetry cares. */
export interface ObservedOutcome {
  ok: boolean;
  error?: ErrorInfo;
  timedOut?: boolean;
  shutdown?: boolean;
}

/**
 * Starts observing an attempt: its span is a child of the context its message carried (`trace`
 * when the caller extracted it already, as a pack does once for its tasks).
 */
export function observeTask(
  telemetry: Telemetry,
  run: { envelope: EnvelopeTrace; trace?: Context },
  attempt: ObservedAttempt,
): TaskObservation {
  let parent = run.trace;
  if (parent === undefined) {
    parent = contextFrom(run.envelope);
    if (run.envelope.traceparent !== undefined)
      telemetry.rememberJob(attempt.jobId, attempt.stage, parent);
  }
  return new TaskObservation(telemetry, parent, attempt);
}

export class TaskObservation {
  private readonly span: Span;
  private readonly recording: boolean;
  private attrs: TransportAttributes | undefined;
  private handlerStartedAt = 0;
  private outcome: ObservedOutcome | undefined;

  constructor(
    private readonly telemetry: Telemetry,
    parent: Context,
    attempt: ObservedAttempt,
  ) {
    // A message sent under a span carries its context: its task's span joins that trace whether
    // or not this process could record it when it last looked.
    this.span =
      trace.getSpanContext(parent) !== undefined || telemetry.tracing()
        ? telemetry.tracer.startSpan(SPAN.task, { kind: SpanKind.CONSUMER }, parent)
        : NO_SPAN;
    this.recording = this.span.isRecording();
    if (this.recording)
      this.span.setAttributes({
        [ATTR.operationType]: 'process',
        [ATTR.operationName]: 'process',
        [ATTR.destination]: 'task',
        [ATTR.messageId]: attempt.taskId,
        [ATTR.jobId]: attempt.jobId,
        [ATTR.stage]: attempt.stage,
        [ATTR.taskIndex]: attempt.index,
        [ATTR.attempt]: attempt.attempt,
      });
  }

  /**
   * The task's job is known: its transport and name label what follows. `enqueuedAt` (when the
   * transport reports it) gives the queue wait.
   */
  job(job: { name: string; transport: string }, enqueuedAt: Date | undefined): void {
    this.attrs = this.telemetry.transport(job.transport);
    if (enqueuedAt !== undefined)
      this.telemetry.queueWait.record(
        Math.max(0, (Date.now() - enqueuedAt.getTime()) / 1000),
        this.attrs.base,
      );
    if (this.recording) {
      this.span.setAttributes(this.attrs.base);
      this.span.setAttribute(ATTR.jobName, job.name);
    }
  }

  /**
   * Runs the handler with the task's span as the active context, so that spans the handler starts
   * (an HTTP call, a database query) are its children. A span that does not record is not made
   * active: the handler keeps the context it would have had.
   */
  runHandler<A, B, C, T>(fn: (a: A, b: B, c: C) => Promise<T>, a: A, b: B, c: C): Promise<T> {
    // The arguments are passed through, not captured in a closure: this runs once per task.
    this.handlerStartedAt = performance.now();
    if (this.attrs) this.telemetry.inFlight.add(1, this.attrs.base);
    if (!this.recording) return fn(a, b, c);
    return context.with(trace.setSpan(context.active(), this.span), fn, undefined, a, b, c);
  }

  /** The attempt failed before its handler could run (no definition, an invalid input). */
  failed(error: ErrorInfo): void {
    this.outcome ??= { ok: false, error };
  }

  /** The handler returned or threw. */
  handlerEnded(outcome: ObservedOutcome): void {
    this.outcome = outcome;
    if (this.attrs) this.telemetry.inFlight.add(-1, this.attrs.base);
  }

  /** The attempt is settled: its span ends and its counters move. */
  end(settlement: ObservedSettlement, failure?: ErrorInfo): void {
    const outcome = this.outcome;
    const name = outcomeName(settlement, outcome);
    if (this.attrs) this.attrs.settled++;
    const attrs = this.attrs?.byOutcome[name];
    if (attrs) {
      if (outcome && this.handlerStartedAt > 0)
        this.telemetry.taskDuration.record(
          (performance.now() - this.handlerStartedAt) / 1000,
          attrs,
        );
      if (name === 'succeeded') this.telemetry.tasksCompleted.add(1, this.attrs!.base);
      else if (name === 'retry') this.telemetry.tasksRetried.add(1, this.attrs!.base);
      else if (name === 'dead_letter') this.telemetry.tasksPoisoned.add(1, this.attrs!.base);
      if (outcome?.timedOut) this.telemetry.tasksTimedOut.add(1, this.attrs!.base);
    }
    if (this.recording) {
      this.span.setAttribute(ATTR.outcome, name);
      if (settlement.action === 'deadLetter' && settlement.reason)
        this.span.setAttribute(ATTR.deadLetterReason, settlement.reason);
      if (outcome?.timedOut) this.span.setAttribute(ATTR.timedOut, true);
    }
    endSpan(this.span, failure ?? (outcome && !outcome.ok ? outcome.error : undefined));
  }

  /** The attempt could not be recorded (the store or a transport failed): it is redelivered. */
  fail(error: unknown): void {
    if (this.outcome === undefined && this.handlerStartedAt > 0 && this.attrs)
      this.telemetry.inFlight.add(-1, this.attrs.base);
    if (this.recording) this.span.setAttribute(ATTR.outcome, 'released');
    endSpan(this.span, error);
  }
}

function outcomeName(
  settlement: ObservedSettlement,
  outcome: ObservedOutcome | undefined,
): TaskOutcomeName {
  if (settlement.action === 'deadLetter') return 'dead_letter';
  if (settlement.action === 'retry') return outcome?.shutdown || !outcome ? 'released' : 'retry';
  return outcome ? (outcome.ok ? 'succeeded' : 'skipped') : 'skipped';
}
