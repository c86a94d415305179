/**
 * A stage's fan-out: the tasks its `fanOut` yields are inserted chunk by chunk (existing rows
 * skipped) and their messages sent in batches, then the stage is sealed with its total. Run again
 * after a crash it resumes: existing tasks are not re-inserted and terminal ones are not re-sent.
 */
import { randomUUID } from 'node:crypto';
import { type Context, ROOT_CONTEXT, type Span } from '@opentelemetry/api';
import pLimit from 'p-limit';
import type { FanOutContext, FanOutSource, StageDefinition, TaskResult } from '../../define.js';
import { toErrorInfo } from '../../errors.js';
import { FINISHED_STATUSES } from '../../operations/statuses.js';
import type { JobRecord } from '../../store.js';
import { ATTR } from '../../telemetry/attributes.js';
import { fanOutSpan } from '../../telemetry/steps.js';
import { traceFieldsOf } from '../../telemetry/trace-context.js';
import { asJson } from '../../util/json.js';
import { sendBatched } from '../batching.js';
import type { EngineContext } from '../context.js';
import { laneOf, type OutgoingTask, taskMessages } from '../outbox.js';
import type { StageAdvance } from './advance.js';
import { stageResults } from './results.js';
import type { TaskWindow } from './task-window.js';

/** Chunks between checks that the job is still running (a cancelled job stops its fan-out). */
const CHUNKS_PER_ACTIVITY_CHECK = 10;

/** An error thrown by user code (a `fanOut`), as opposed to the store or a transport failing. */
export class UserCodeError extends Error {
  constructor(override readonly cause: unknown) {
    super(toErrorInfo(cause).message);
  }
}

export interface FanOutOptions {
  job: JobRecord;
  stage: number;
  definition: StageDefinition;
  advance: StageAdvance;
  /** Releases the stage's tasks when its transport has a fairness window. */
  window: TaskWindow;
  /** The stage message's span context: the fan-out's span is its child. */
  trace?: Context;
}

export function fanOut(ctx: EngineContext, options: FanOutOptions): Promise<void> {
  const { job, stage, definition } = options;
  const step = { jobId: job.id, jobName: job.name, transport: job.transport, stage };
  const spec = fanOutSpan(
    ctx.telemetry,
    { ...step, stageName: definition.name },
    options.trace ?? ROOT_CONTEXT,
  );
  return ctx.telemetry.inSpan(spec, (span) => fanOutIn(ctx, options, span));
}

async function fanOutIn(ctx: EngineContext, options: FanOutOptions, span: Span): Promise<void> {
  const { job, stage, definition, advance, window } = options;
  const target = ctx.transportOf(job.transport);
  // Task-row claims: the rows are the messages, offered as they are inserted. Receivers then take
  // every offered stage in turn, which interleaves jobs as the window would: no window applies.
  const offer = target.rowClaims ? target.transport.offerTasks?.bind(target.transport) : undefined;
  const windowSize = offer ? undefined : target.policy.window;
  const trace = traceFieldsOf(span);
  const fanned = ctx.telemetry.transport(job.transport).base;
  let messagesSent = 0;
  const chunkSize = target.policy.chunkSize;
  const chunks = userChunks(
    () => definition.fanOut(job.params, fanOutContext(ctx, job, stage)),
    chunkSize,
  );
  const limit = pLimit(target.policy.concurrency);
  const batchPrefix = randomUUID().slice(0, 8);
  const itemField = (i: number) => `stages[${stage}] (${definition.name}) fanOut item ${i}`;
  let index = 0;
  let chunk: unknown[] = [];
  let chunksSent = 0;
  let inFlight: Promise<void> = Promise.resolve();
  const flush = async () => {
    if (chunk.length === 0) return;
    const start = index - chunk.length;
    const batchId = `${batchPrefix}-${start}`;
    const tasks = chunk.map((input, i) => ({
      index: start + i,
      input: asJson(input, itemField, start + i),
      batchId,
    }));
    chunk = [];
    const inserted = await ctx.store.insertTasks(job.id, stage, tasks);
    if (offer) {
      // Every row below `index` exists now; offers only grow, so a resumed fan-out re-offers.
      const upto = { jobId: job.id, stage, upto: index, packTasks: target.policy.packTasks };
      ctx.telemetry.fanOutTasks.add(tasks.length, fanned);
      await inFlight;
      inFlight = offer([{ ...upto, ...laneOf(job.priority), ...trace }]);
      inFlight.catch(() => {});
      chunksSent++;
      return;
    }
    const resumed = inserted < tasks.length;
    let open = resumed ? await openTasks(ctx, { jobId: job.id, stage, tasks }) : tasks;
    // With a window, a chunk's messages are those the store releases; a resumed chunk re-sends
    // only its open tasks released before (their messages may have been lost with the crash).
    if (windowSize !== undefined)
      open = resumed ? await releasedOf(ctx, { jobId: job.id, stage, tasks: open }) : [];
    const messages = taskMessages(
      { target, jobId: job.id, stage, resumed, trace, priority: job.priority, spread: true },
      open,
    );
    ctx.telemetry.fanOutTasks.add(open.length, fanned);
    messagesSent += messages.length;
    // Overlap this chunk's sends with the next chunk's insert, but never more than one behind.
    await inFlight;
    inFlight = sendBatched(target, messages, limit);
    if (windowSize !== undefined) {
      const release = { jobId: job.id, stage, window: windowSize, fanOut: true };
      // Both awaited together: a failure of either is the chunk's, and neither goes unhandled.
      inFlight = Promise.all([inFlight, window.release([release], { trace, spread: true })]).then(
        ([, sent]) => {
          messagesSent += sent.messages;
        },
      );
    }
    // Awaited later (next chunk or the end); until then a failure must not count as unhandled.
    inFlight.catch(() => {});
    chunksSent++;
  };
  for await (const inputs of chunks) {
    for (const input of inputs) {
      chunk.push(input);
      index++;
      if (chunk.length >= chunkSize) {
        await flush();
        if (chunksSent % CHUNKS_PER_ACTIVITY_CHECK === 0 && (await isInactive(ctx, job.id))) return;
      }
    }
  }
  await flush();
  await inFlight;
  if (span.isRecording())
    span.setAttributes({
      [ATTR.tasks]: index,
      [ATTR.chunks]: chunksSent,
      [ATTR.batchCount]: messagesSent,
    });
  const completion = await ctx.store.sealStage(job.id, stage, index);
  if (completion) await advance.onStageComplete(completion);
}

/** Tasks of one fan-out chunk of a job's stage. */
interface ChunkTasks {
  jobId: string;
  stage: number;
  tasks: readonly OutgoingTask[];
}

/** Of a resumed chunk's tasks, those not terminal yet: only they need a message. */
async function openTasks(
  ctx: EngineContext,
  { jobId, stage, tasks }: ChunkTasks,
): Promise<OutgoingTask[]> {
  const page = await ctx.store.listTasks(jobId, {
    stage,
    afterIndex: tasks[0]!.index - 1,
    limit: tasks.length,
  });
  const open = new Set(
    page.tasks.filter((t) => t.status === 'pending' || t.status === 'running').map((t) => t.index),
  );
  return tasks.filter((t) => open.has(t.index));
}

/**
 * Of a resumed chunk's open tasks, those the stage's window released before the crash. None when
 * the stage has no window yet: this fan-out's first release makes one and sends them.
 */
async function releasedOf(
  ctx: EngineContext,
  { jobId, stage, tasks }: ChunkTasks,
): Promise<OutgoingTask[]> {
  const released = (await ctx.store.getStages(jobId))[stage]?.released ?? null;
  return released === null ? [] : tasks.filter((t) => t.index < released);
}

async function isInactive(ctx: EngineContext, jobId: string): Promise<boolean> {
  const job = await ctx.store.getJob(jobId);
  return !job || FINISHED_STATUSES.has(job.status);
}

function fanOutContext(ctx: EngineContext, job: JobRecord, stage: number): FanOutContext {
  return {
    jobId: job.id,
    stage,
    results: <O>(stageName: string) =>
      stageResults(ctx.store, job.id, ctx.directory.stageIndex(job, stageName)) as AsyncIterable<
        TaskResult<O>
      >,
    logger: ctx.logger,
  };
}

/**
 * Iterates a stage's `fanOut` result (array, iterable or async iterable) in chunks of up to
 * `size` items, marking what the user's code throws — calling it or pulling an item — as a
 * {@link UserCodeError}. A synchronous source is pulled without awaiting each item: a generator
 * turn per item would cost more than the rest of the fan-out's work on it.
 */
export async function* userChunks(
  fanOut: () => FanOutSource<unknown> | Promise<FanOutSource<unknown>>,
  size: number,
): AsyncGenerator<unknown[]> {
  let iterator: Iterator<unknown> | AsyncIterator<unknown>;
  let sync: boolean;
  try {
    const source = await fanOut();
    sync = !(Symbol.asyncIterator in source);
    iterator = sync
      ? (source as Iterable<unknown>)[Symbol.iterator]()
      : (source as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  } catch (err) {
    throw new UserCodeError(err);
  }
  for (;;) {
    const chunk: unknown[] = [];
    while (chunk.length < size) {
      let next: IteratorResult<unknown>;
      try {
        next = sync ? (iterator as Iterator<unknown>).next() : await iterator.next();
      } catch (err) {
        throw new UserCodeError(err);
      }
      if (next.done) {
        if (chunk.length > 0) yield chunk;
        return;
      }
      chunk.push(next.value);
    }
    yield chunk;
  }
}
