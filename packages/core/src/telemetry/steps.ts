/**
 * The spans of a job's steps other than task attempts, one builder per step: submit (producer),
 * a stage message's processing (consumer), its fan-out (producer), a barrier batch and a stage
 * advance. Each is parented so that a job is one trace: a message's processing is a child of the
 * span that sent it, and a step run without a message at hand (an advance from a barrier batch)
 * joins the job's trace as this worker last saw it.
 * @module
 */
import { type Context, context, SpanKind } from '@opentelemetry/api';
import type { StageEnvelope } from '../envelope.js';
import type { StageCompletion } from '../store.js';
import { ATTR, SPAN } from './attributes.js';
import type { SpanSpec, Telemetry } from './telemetry.js';
import { contextFrom } from './trace-context.js';

/** `submit()`: a producer span under the application's active context. */
export function submitSpan(
  telemetry: Telemetry,
  job: { jobId: string; jobName: string; transport: string },
): SpanSpec {
  return {
    name: SPAN.submit,
    kind: SpanKind.PRODUCER,
    parent: context.active(),
    attributes: () => ({
      ...telemetry.transport(job.transport).base,
      [ATTR.operationType]: 'send',
      [ATTR.operationName]: 'submit',
      [ATTR.destination]: 'stage',
      [ATTR.messageId]: `${job.jobId}.stage.0`,
      [ATTR.jobId]: job.jobId,
      [ATTR.jobName]: job.jobName,
      [ATTR.stage]: 0,
    }),
  };
}

/** A stage message's processing: a consumer span under the span that sent the message. */
export function stageSpan(envelope: StageEnvelope): SpanSpec {
  return {
    name: SPAN.stage,
    kind: SpanKind.CONSUMER,
    parent: contextFrom(envelope),
    attributes: () => ({
      [ATTR.operationType]: 'process',
      [ATTR.operationName]: 'process',
      [ATTR.destination]: 'stage',
      [ATTR.messageId]: `${envelope.jobId}.stage.${envelope.stage}`,
      [ATTR.jobId]: envelope.jobId,
      [ATTR.stage]: envelope.stage,
    }),
  };
}

/** A stage's fan-out: a producer span whose context every task message (or pack) carries. */
export function fanOutSpan(
  telemetry: Telemetry,
  step: { jobId: string; jobName: string; transport: string; stage: number; stageName: string },
  parent: Context,
): SpanSpec {
  return {
    name: SPAN.fanOut,
    kind: SpanKind.PRODUCER,
    parent,
    attributes: () => ({
      ...telemetry.transport(step.transport).base,
      [ATTR.operationType]: 'send',
      [ATTR.operationName]: 'fan-out',
      [ATTR.destination]: 'task',
      [ATTR.jobId]: step.jobId,
      [ATTR.jobName]: step.jobName,
      [ATTR.stage]: step.stage,
      [ATTR.stageName]: step.stageName,
    }),
  };
}

/** A stage completed: the advance (or the job's failure) in the job's trace. */
export function advanceSpan(
  telemetry: Telemetry,
  completion: StageCompletion,
  job: { name: string; transport: string },
): SpanSpec {
  return {
    name: SPAN.advance,
    kind: SpanKind.INTERNAL,
    parent: telemetry.jobContext(completion.jobId),
    attributes: () => ({
      ...telemetry.transport(job.transport).base,
      [ATTR.jobId]: completion.jobId,
      [ATTR.jobName]: job.name,
      [ATTR.stage]: completion.stage,
      [ATTR.tasks]: completion.total,
      [ATTR.succeeded]: completion.succeeded,
      [ATTR.failed]: completion.failed,
    }),
  };
}

/**
 * A barrier batch (one store round trip recording many tasks' outcomes), in the trace of its
 * first task's job: a batch serves tasks of any job, so it cannot belong to all their traces.
 */
export function barrierSpan(
  telemetry: Telemetry,
  batch: { jobId: string; size: number; operation: 'complete' | 'retry' },
): SpanSpec {
  return {
    name: SPAN.barrier,
    kind: SpanKind.INTERNAL,
    parent: telemetry.jobContext(batch.jobId),
    attributes: () => ({
      [ATTR.operationName]: batch.operation,
      [ATTR.batchSize]: batch.size,
      [ATTR.batchCount]: batch.size,
    }),
  };
}
