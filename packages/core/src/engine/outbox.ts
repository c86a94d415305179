/**
 * Building and sending the engine's messages: stage messages, task messages (one per task, or
 * packs of `batching.packTasks`), the claim check that keeps an input too large for the
 * transport in its task row only, and running open tasks again that have no message.
 */
import { createHash } from 'node:crypto';
import { encodeEnvelope, type PackedTask, packHead, type TaskEnvelope } from '../envelope.js';
import { taskId as makeTaskId } from '../ids.js';
import type { Priority } from '../priority.js';
import type { TaskRecord } from '../store.js';
import type { TraceFields } from '../telemetry/trace-context.js';
import type { OutgoingMessage } from '../transport.js';
import { sendBatched } from './batching.js';
import type { TransportState } from './options.js';

/** A task to send: its index in the stage and its input. */
export interface OutgoingTask {
  index: number;
  input: unknown;
}

/** Sends the message that starts stage `stage` of a job (or finishes it, past its last stage). */
export async function sendStageMessage(
  target: TransportState,
  {
    jobId,
    stage,
    trace,
  }: {
    jobId: string;
    stage: number;
    /** The sending span's context: the stage's processing joins its trace. */
    trace?: TraceFields | undefined;
  },
): Promise<void> {
  await target.transport.send('stage', [
    {
      body: encodeEnvelope({ v: 1, kind: 'stage', jobId, stage, ...trace }),
      messageId: `${jobId}.stage.${stage}`,
      ...(trace ? { traceparent: trace.traceparent } : {}),
    },
  ]);
}

/** Where a fan-out chunk's messages go and how they are marked. */
export interface TaskMessagesOptions {
  target: TransportState;
  jobId: string;
  stage: number;
  /** Sent by a resumed fan-out: the tasks may have run already, so each is checked on its own. */
  resumed: boolean;
  /** The fan-out's span context, carried by every message (one per pack). */
  trace?: TraceFields | undefined;
  /** The job's priority: the lane of every message. */
  priority?: Priority | undefined;
  /**
   * The tasks are a fan-out's chunk: packed by the transport's recommendation, at most
   * ⌈tasks / `policy.spreadOver`⌉ share a message, so that a small stage is not one pack that one
   * worker runs while the others idle.
   */
  spread?: boolean | undefined;
}

/**
 * A fan-out chunk's messages: one per task, or packs of up to `packTasks` within the transport's
 * message size.
 */
export function taskMessages(
  options: TaskMessagesOptions,
  tasks: readonly OutgoingTask[],
): OutgoingMessage[] {
  const { target, jobId, stage, resumed, trace, priority } = options;
  const { packTasks, spreadOver } = target.policy;
  const packSize =
    options.spread && spreadOver !== undefined
      ? Math.min(packTasks, Math.ceil(tasks.length / spreadOver))
      : packTasks;
  if (packSize <= 1)
    return tasks.map((t) =>
      taskMessage(target, { jobId, stage, index: t.index, input: t.input, trace, priority }),
    );
  const route = routeOf(jobId, priority);
  const limit = target.transport.limits.maxMessageBytes;
  // Each task is serialised once: the pack's body is its head with the entries spliced into its
  // `tasks` list, so the size counted is the size sent.
  const head = packHead({
    v: 1,
    kind: 'tasks',
    jobId,
    stage,
    ...(resumed ? { resumed: true } : {}),
    ...trace,
  });
  const overhead = Buffer.byteLength(head) + 2; // + the closing `]}`
  const messages: OutgoingMessage[] = [];
  let indexes: number[] = [];
  let entries: string[] = [];
  let bytes = overhead;
  const flush = () => {
    if (entries.length === 0) return;
    messages.push({
      body: `${head}${entries.join(',')}]}`,
      messageId: packId(jobId, stage, indexes),
      ...(trace ? { traceparent: trace.traceparent } : {}),
      ...route,
    });
    indexes = [];
    entries = [];
    bytes = overhead;
  };
  for (const t of tasks) {
    let entry = JSON.stringify({ index: t.index, input: t.input } satisfies PackedTask);
    let size = Buffer.byteLength(entry) + 1; // + its comma
    // Claim check per task: an input too large to share a message stays in the task row.
    if (overhead + size > limit) {
      entry = JSON.stringify({ index: t.index } satisfies PackedTask);
      size = Buffer.byteLength(entry) + 1;
    }
    if (entries.length >= packSize || bytes + size > limit) flush();
    indexes.push(t.index);
    entries.push(entry);
    bytes += size;
  }
  flush();
  return messages;
}

/**
 * A pack's message id names its exact set of tasks: a resumed fan-out packs differently, and a
 * transport that drops duplicate ids must not take its packs for the earlier ones.
 */
function packId(jobId: string, stage: number, indexes: readonly number[]): string {
  const digest = createHash('sha1').update(indexes.join(',')).digest('hex').slice(0, 12);
  return `${makeTaskId(jobId, stage, indexes[0]!)}+${indexes.length}-${digest}`;
}

/** One task, as {@link taskMessage} sends it. */
export interface TaskMessageSpec {
  jobId: string;
  stage: number;
  index: number;
  input: unknown;
  /**
   * The task's attempts so far, on any message but the fan-out's own (a re-drive): it marks the
   * message's first delivery as one to claim, not admit.
   */
  attempts?: number;
  /** The sending span's context. */
  trace?: TraceFields | undefined;
  /** The job's priority: the message's lane. */
  priority?: Priority | undefined;
}

/** One task's message, its input inline when it fits the transport's message size. */
export function taskMessage(target: TransportState, spec: TaskMessageSpec): OutgoingMessage {
  const taskId = makeTaskId(spec.jobId, spec.stage, spec.index);
  const base: TaskEnvelope = { v: 1, kind: 'task', jobId: spec.jobId, stage: spec.stage, taskId };
  if (spec.attempts !== undefined) base.attempts = spec.attempts;
  const trace = spec.trace;
  if (trace) {
    base.traceparent = trace.traceparent;
    if (trace.tracestate !== undefined) base.tracestate = trace.tracestate;
  }
  const inline = encodeEnvelope({ ...base, input: spec.input });
  const max = target.transport.limits.maxMessageBytes;
  // UTF-16 length × 3 bounds the UTF-8 size: measure exactly only when it could matter.
  const fits = inline.length * 3 <= max || Buffer.byteLength(inline) <= max;
  const body = fits ? inline : encodeEnvelope(base);
  const route = routeOf(spec.jobId, spec.priority);
  return trace
    ? { body, messageId: taskId, traceparent: trace.traceparent, ...route }
    : { body, messageId: taskId, ...route };
}

/**
 * Runs tasks again that are open in the store but have no message (re-opened by a retry, or lost),
 * their attempts counted from their rows: on a transport claiming task rows their rows are made
 * due at once, on any other one a task message each is sent.
 */
export async function resendTasks(
  target: TransportState,
  tasks: readonly TaskRecord[],
  priority: Priority | undefined,
): Promise<void> {
  if (tasks.length === 0) return;
  const lane = laneOf(priority);
  if (target.rowClaims && target.transport.retryTaskRows) {
    await target.transport.retryTaskRows(
      tasks.map((t) => ({ jobId: t.jobId, stage: t.stage, index: t.index, delayMs: 0, ...lane })),
    );
    return;
  }
  const messages = tasks.map((t) =>
    taskMessage(target, {
      jobId: t.jobId,
      stage: t.stage,
      index: t.index,
      input: t.input,
      attempts: t.attempts,
      priority,
    }),
  );
  await sendBatched(target, messages);
}

const NORMAL_LANE: { priority?: Priority } = Object.freeze({});

/**
 * The `priority` field of a message in the lane of `priority`: none for `normal`, the default
 * (one shared empty object: most messages are normal, and this runs per message).
 */
export function laneOf(priority: Priority | undefined): { priority?: Priority } {
  return priority === undefined || priority === 'normal' ? NORMAL_LANE : { priority };
}

/**
 * The lane and the fairness key of a job's task message: on a transport with `fairness`, jobs
 * take turns within a lane.
 */
export function routeOf(
  jobId: string,
  priority: Priority | undefined,
): { priority?: Priority; fairnessKey: string } {
  return { ...laneOf(priority), fairnessKey: jobId };
}
