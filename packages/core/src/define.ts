import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { Logger } from './logger.js';

/** Retry policy of a task: attempts and exponential backoff with jitter. */
export interface RetryPolicy {
  /** Attempts in all, the first included. @defaultValue 3 */
  maxAttempts?: number;
  /** Delay before the first retry, ms. @defaultValue 1000 */
  initialDelayMs?: number;
  /** Multiplier per further retry. @defaultValue 2 */
  factor?: number;
  /** Upper bound of one delay, ms. @defaultValue 60000 */
  maxDelayMs?: number;
  /** Fraction of each delay drawn at random (0 = none, 1 = full jitter). @defaultValue 0.5 */
  jitter?: number;
}

/** What a task handler gets besides its input. */
export interface TaskContext {
  jobId: string;
  taskId: string;
  /** Index of the stage the task belongs to. */
  stage: number;
  /** Position of the task in its stage's fan-out. */
  index: number;
  /** 1 for the first attempt. */
  attempt: number;
  /** Fires when the attempt times out or the worker shuts down. */
  signal: AbortSignal;
  logger: Logger;
}

/** A task: one unit of work a stage fans out to. Create with {@link defineTask}. */
export interface TaskDefinition<I = unknown, O = unknown> {
  readonly name: string;
  readonly input?: StandardSchemaV1<unknown, I>;
  handler(input: I, ctx: TaskContext): O | Promise<O>;
  readonly retry?: RetryPolicy;
  /** Abort the attempt (and count it failed) after this long. */
  readonly timeoutMs?: number;
}

/**
 * Declares a task. With an `input` schema (zod, valibot, arktype … any Standard Schema) the
 * handler's input type is the schema's output type and every input is validated before it runs;
 * the output type is inferred from the handler.
 *
 * @example
 * ```ts
 * const greet = defineTask({
 *   name: 'greet',
 *   input: z.object({ who: z.string() }),
 *   handler: ({ who }) => `hello ${who}`,
 * });
 * ```
 */
export function defineTask<S extends StandardSchemaV1, O>(definition: {
  name: string;
  input: S;
  handler: (input: StandardSchemaV1.InferOutput<S>, ctx: TaskContext) => O | Promise<O>;
  retry?: RetryPolicy;
  timeoutMs?: number;
}): TaskDefinition<StandardSchemaV1.InferOutput<S>, Awaited<O>>;
export function defineTask<I, O>(definition: {
  name: string;
  handler: (input: I, ctx: TaskContext) => O | Promise<O>;
  retry?: RetryPolicy;
  timeoutMs?: number;
}): TaskDefinition<I, Awaited<O>>;
export function defineTask(definition: TaskDefinition): TaskDefinition {
  assertName(definition.name, 'task');
  return Object.freeze({ ...definition });
}

/** One succeeded task's result, as streamed by `results(...)`. */
export interface TaskResult<O = unknown> {
  stage: number;
  index: number;
  taskId: string;
  result: O;
}

/** What `fanOut` gets besides the job's params. */
export interface FanOutContext {
  jobId: string;
  /** Index of the stage being fanned out. */
  stage: number;
  /**
   * Streams the succeeded results of an earlier stage, by name, in task order — page by page from
   * the store, so 100,000 results never need to fit in one array.
   */
  results<O = unknown>(stageName: string): AsyncIterable<TaskResult<O>>;
  logger: Logger;
}

/** Task inputs of one stage: an array, any iterable, or an async iterable (streamed in chunks). */
export type FanOutSource<I> = Iterable<I> | AsyncIterable<I>;

/** How many failed tasks a stage accepts before the job fails: a count, or a fraction of the stage. */
export type FailureTolerance = number | { ratio: number };

/** A stage: runs one task over many inputs. Create with {@link stage} for type checking. */
export interface StageDefinition<P = unknown, I = unknown, O = unknown> {
  readonly name: string;
  readonly task: TaskDefinition<I, O>;
  /**
   * Computes the stage's task inputs. Must be deterministic for the same params and earlier
   * results: a fan-out interrupted by a crash is resumed by running it again.
   */
  fanOut(params: P, ctx: FanOutContext): FanOutSource<I> | Promise<FanOutSource<I>>;
  /** Failed tasks tolerated before the job fails at the end of this stage. @defaultValue 0 */
  readonly tolerateFailures?: FailureTolerance;
}

/** Declares a stage, checking that `fanOut` yields what the task accepts. */
export function stage<P, I, O>(definition: StageDefinition<P, I, O>): StageDefinition<P, I, O> {
  assertName(definition.name, 'stage');
  return Object.freeze({ ...definition });
}

/** What `finalize` gets. */
export interface FinalizeContext<P> {
  jobId: string;
  params: P;
  /** Per stage, in order: name and counts. */
  stages: { name: string; total: number; succeeded: number; failed: number }[];
  /** Streams an earlier stage's succeeded results, as in `fanOut`. */
  results<O = unknown>(stageName: string): AsyncIterable<TaskResult<O>>;
  logger: Logger;
}

/** A job: stages that run in order. Create with {@link defineJob}. */
export interface JobDefinition<N extends string = string, P = unknown, R = unknown> {
  readonly name: N;
  readonly params?: StandardSchemaV1<unknown, P>;
  readonly stages: readonly StageDefinition<P>[];
  finalize?(ctx: FinalizeContext<P>): R | Promise<R>;
  /** A job not finished this many milliseconds after it is due is cancelled with `DEADLINE_EXCEEDED`. */
  readonly deadlineMs?: number;
}

/**
 * Declares a job. `params` (any Standard Schema) is validated at submit; each stage's `fanOut`
 * gets the validated params; `finalize` turns the job's results into the job result.
 */
export function defineJob<
  const N extends string,
  S extends StandardSchemaV1,
  R = undefined,
>(definition: {
  name: N;
  params: S;
  stages: readonly StageDefinition<StandardSchemaV1.InferOutput<S>>[];
  finalize?: (ctx: FinalizeContext<StandardSchemaV1.InferOutput<S>>) => R | Promise<R>;
  deadlineMs?: number;
}): JobDefinition<N, StandardSchemaV1.InferOutput<S>, Awaited<R>>;
export function defineJob<const N extends string, P = undefined, R = undefined>(definition: {
  name: N;
  stages: readonly StageDefinition<P>[];
  finalize?: (ctx: FinalizeContext<P>) => R | Promise<R>;
  deadlineMs?: number;
}): JobDefinition<N, P, Awaited<R>>;
export function defineJob(definition: JobDefinition): JobDefinition {
  assertName(definition.name, 'job');
  if (!Array.isArray(definition.stages) || definition.stages.length === 0) {
    throw new TypeError(`job "${definition.name}": "stages" must be a non-empty array`);
  }
  const names = new Set<string>();
  for (const [i, s] of definition.stages.entries()) {
    if (typeof s?.fanOut !== 'function' || typeof s.task?.handler !== 'function') {
      throw new TypeError(
        `job "${definition.name}": stages[${i}] needs a "task" and a "fanOut" function`,
      );
    }
    if (names.has(s.name))
      throw new TypeError(`job "${definition.name}": duplicate stage name "${s.name}"`);
    names.add(s.name);
  }
  return Object.freeze({ ...definition, stages: Object.freeze([...definition.stages]) });
}

function assertName(name: unknown, what: string): void {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.:-]{1,100}$/.test(name)) {
    throw new TypeError(
      `${what} "name" must be 1-100 characters of letters, digits, _ . : - (got ${JSON.stringify(name)})`,
    );
  }
}

/** Params type of a job definition. */
export type JobParams<J> = J extends JobDefinition<string, infer P, unknown> ? P : unknown;
/** Result type of a job definition. */
export type JobResult<J> = J extends JobDefinition<string, unknown, infer R> ? R : never;
