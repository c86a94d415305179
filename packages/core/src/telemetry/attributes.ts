/**
 * The names Switchyard's spans and metrics use: the OpenTelemetry messaging semantic conventions'
 * attributes and Switchyard's own. Attributes name ids, counts and outcomes only: never a task's
 * input or result, a job's params, or a secret.
 * @module
 */

/** Instrumentation scope of every tracer and meter Switchyard creates. */
export const INSTRUMENTATION_SCOPE = '@switchyard/core';

export const ATTR = {
  messagingSystem: 'messaging.system',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  destination: 'messaging.destination.name',
  messageId: 'messaging.message.id',
  batchCount: 'messaging.batch.message_count',
  jobId: 'switchyard.job.id',
  jobName: 'switchyard.job.name',
  jobStatus: 'switchyard.job.status',
  stage: 'switchyard.stage',
  stageName: 'switchyard.stage.name',
  taskIndex: 'switchyard.task.index',
  attempt: 'switchyard.attempt',
  transport: 'switchyard.transport',
  outcome: 'switchyard.task.outcome',
  deadLetterReason: 'switchyard.dead_letter.reason',
  timedOut: 'switchyard.task.timed_out',
  tasks: 'switchyard.tasks',
  chunks: 'switchyard.chunks',
  batchSize: 'switchyard.batch.size',
  stagesCompleted: 'switchyard.stages.completed',
  succeeded: 'switchyard.tasks.succeeded',
  failed: 'switchyard.tasks.failed',
  reason: 'switchyard.reason',
} as const;

/** Span names: one per step of a job, whichever worker runs it. */
export const SPAN = {
  submit: 'switchyard submit',
  stage: 'switchyard stage',
  fanOut: 'switchyard fan-out',
  task: 'switchyard task',
  pack: 'switchyard pack',
  barrier: 'switchyard barrier',
  advance: 'switchyard advance',
  finalize: 'switchyard finalize',
} as const;

/** How a task attempt's message was settled, as the `switchyard.task.outcome` attribute. */
export type TaskOutcomeName = 'succeeded' | 'retry' | 'dead_letter' | 'released' | 'skipped';
