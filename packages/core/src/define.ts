import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { ScheduleDefinition } from './engine/schedules/types.js';
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
  /**
   * Fires when the attempt times out (`TASK_TIMEOUT`), the worker shuts down, or the job is
   * cancelled (`JOB_CANCELLED`, or `DEADLINE_EXCEEDED` past its deadline): its `reason` says
   * which. A cancel reaches it at once where the store notifies cancels, otherwise within the
   * Switchyard's `cancelCheckIntervalMs`. Read it only if the handler can stop early: a handler
   * that never reads it costs nothing to watch.
   */
  signal: AbortSignal;
  logger: Logger;
}

/**
 * Per-key concurrency of a task, enforced across every worker through the store: at most `limit`
 * of the task's handlers with one key run at once, anywhere. A task over the limit waits without
 * holding a worker slot (its message comes back later) and without using up an attempt. A worker
 * that dies holding a key slot loses it when the slot's lease runs out (`flowControl.slotLeaseMs`).
 */
export interface ConcurrencyLimit<I = unknown> {
  /** Handlers of one key running at once, across all workers: a positive integer. */
  readonly limit: number;
  /**
   * The key of a task, from its validated input (e.g. its tenant): a string of at most 200
   * characters. @defaultValue one key for every task of this task definition
   */
  key?(input: I): string;
}

/**
 * A rate limit of a task, enforced across every worker through the store: in any window of
 * `periodMs` milliseconds at most `limit` of its handlers with one key start (by the store's
 * clock). A task over the limit waits, as for {@link ConcurrencyLimit}, until a start is free.
 */
export interface RateLimit<I = unknown> {
  /** Starts per window, per key: a positive integer (at most 10,000; use a shorter period for more). */
  readonly limit: number;
  /** The window, ms: a positive integer (at most one day). */
  readonly periodMs: number;
  /** The key of a task, as for {@link ConcurrencyLimit.key}. @defaultValue one key for the task */
  key?(input: I): string;
}

/** A task: one unit of work a stage fans out to. Create with {@link defineTask}. */
export interface TaskDefinition<I = unknown, O = unknown> {
  readonly name: string;
  readonly input?: StandardSchemaV1<unknown, I>;
  handler(input: I, ctx: TaskContext): O | Promise<O>;
  readonly retry?: RetryPolicy;
  /** Abort the attempt (and count it failed) after this long. */
  readonly timeoutMs?: number;
  /**
   * Per-key concurrency across all workers (limits are shared by every task definition of this
   * `name`). Needs a store with flow control (memory, PostgreSQL).
   */
  readonly concurrency?: ConcurrencyLimit<I>;
  /** A rate limit across all workers, optionally per key (shared by this `name`, as `concurrency`). */
  readonly rateLimit?: RateLimit<I>;
}

/** Largest `concurrency.limit`. */
export const MAX_CONCURRENCY_LIMIT = 100_000;
/** Largest `rateLimit.limit`: the store keeps one start time per start in the window. */
export const MAX_RATE_LIMIT = 10_000;
/** Longest `rateLimit.periodMs`: one day. */
export const MAX_RATE_PERIOD_MS = 86_400_000;
/** Longest key a `key` function may return. */
export const MAX_FLOW_KEY_LENGTH = 200;

/**
 * Declares a task. With an `input` schema (zod, valibot, arktype … any Standard Schema) the
 * handler's input type is the schema's output type and every input is validated before it runs;
 * the output type is inferred from the handler. `concurrency` and `rateLimit` bound how many of
 * its handlers run at once and start per period, per key, across every worker.
 *
 * @example
 * ```ts
 * const greet = defineTask({
 *   name: 'greet',
 *   input: z.object({ who: z.string(), tenant: z.string() }),
 *   concurrency: { limit: 5, key: (input) => input.tenant },
 *   rateLimit: { limit: 100, periodMs: 1000 },
 *   handler: ({ who }) => `hello ${who}`,
 * });
 * ```
 * @throws {TypeError} the name is invalid, or `concurrency` / `rateLimit` is malformed (the
 * message names the field)
 */
export function defineTask<S extends StandardSchemaV1, O>(definition: {
  name: string;
  input: S;
  handler: (input: StandardSchemaV1.InferOutput<S>, ctx: TaskContext) => O | Promise<O>;
  retry?: RetryPolicy;
  timeoutMs?: number;
  concurrency?: ConcurrencyLimit<StandardSchemaV1.InferOutput<S>>;
  rateLimit?: RateLimit<StandardSchemaV1.InferOutput<S>>;
}): TaskDefinition<StandardSchemaV1.InferOutput<S>, Awaited<O>>;
export function defineTask<I, O>(definition: {
  name: string;
  handler: (input: I, ctx: TaskContext) => O | Promise<O>;
  retry?: RetryPolicy;
  timeoutMs?: number;
  concurrency?: ConcurrencyLimit<NoInfer<I>>;
  rateLimit?: RateLimit<NoInfer<I>>;
}): TaskDefinition<I, Awaited<O>>;
export function defineTask(definition: TaskDefinition): TaskDefinition {
  assertName(definition.name, 'task');
  checkFlowLimits(definition);
  const frozen: TaskDefinition = { ...definition };
  if (definition.concurrency)
    Object.assign(frozen, { concurrency: Object.freeze({ ...definition.concurrency }) });
  if (definition.rateLimit)
    Object.assign(frozen, { rateLimit: Object.freeze({ ...definition.rateLimit }) });
  return Object.freeze(frozen);
}

/** Checks a task's `concurrency` and `rateLimit`, naming the field at fault. */
function checkFlowLimits(definition: TaskDefinition): void {
  const fail = (field: string, rule: string, got: unknown): never => {
    const shown = typeof got === 'function' ? 'a function' : JSON.stringify(got);
    throw new TypeError(`task "${definition.name}": "${field}" ${rule} (got ${shown})`);
  };
  const integer = (value: unknown, field: string, max: number) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max)
      fail(field, `must be an integer from 1 to ${max}`, value);
  };
  const key = (value: unknown, field: string) => {
    if (value !== undefined && typeof value !== 'function')
      fail(field, 'must be a function from the input to a string', value);
  };
  const object = (value: unknown, field: string, shape: string) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      fail(field, `must be an object ${shape}`, value);
  };
  const { concurrency, rateLimit } = definition;
  if (concurrency !== undefined) {
    object(concurrency, 'concurrency', '{ limit, key? }');
    integer(concurrency.limit, 'concurrency.limit', MAX_CONCURRENCY_LIMIT);
    key(concurrency.key, 'concurrency.key');
  }
  if (rateLimit !== undefined) {
    object(rateLimit, 'rateLimit', '{ limit, periodMs, key? }');
    integer(rateLimit.limit, 'rateLimit.limit', MAX_RATE_LIMIT);
    integer(rateLimit.periodMs, 'rateLimit.periodMs', MAX_RATE_PERIOD_MS);
    key(rateLimit.key, 'rateLimit.key');
  }
}

/** One succeeded task's result, as streamed by `results(...)`. */
export interface TaskResult<O = unknown> {
  stage: number;
  index: number;
  taskId: string;
  result: O;
}

/**
 * The task output type of each stage of a job, by stage name: what `results('<stage>')` yields.
 * Jobs whose stages are listed as an array (built at run time) have no literal stage names.
 */
export type StageOutputs = { readonly [stageName: string]: unknown };

/** The outputs before a job's first stage: none. */
export type NoStages = Record<never, never>;

/** What `fanOut` gets besides the job's params, in a job whose stages are listed as an array. */
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

/**
 * What `fanOut` gets in a job declared with `stages: (job) => job.stage(…)…`: `results` accepts
 * only the names of the stages declared before this one and yields their task output type.
 */
export interface TypedFanOutContext<Outputs extends StageOutputs> {
  jobId: string;
  /** Index of the stage being fanned out. */
  stage: number;
  /** Streams the succeeded results of an earlier stage, by name, in task order, page by page. */
  results<K extends keyof Outputs & string>(stageName: K): AsyncIterable<TaskResult<Outputs[K]>>;
  logger: Logger;
}

/** Task inputs of one stage: an array, any iterable, or an async iterable (streamed in chunks). */
export type FanOutSource<I> = Iterable<I> | AsyncIterable<I>;

/** How many failed tasks a stage accepts before the job fails: a count, or a fraction of the stage. */
export type FailureTolerance = number | { ratio: number };

/** A stage: runs one task over many inputs. Create with {@link stage} or `job.stage(…)`. */
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

/**
 * Declares a stage of a job whose stages are listed as an array, checking that `fanOut` yields
 * what the task accepts. Its `fanOut` params are typed only as annotated; prefer
 * `stages: (job) => job.stage(…)`, which types params and earlier results.
 */
export function stage<P, I, O>(definition: {
  name: string;
  task: TaskDefinition<I, O>;
  fanOut(
    params: P,
    ctx: FanOutContext,
  ): FanOutSource<NoInfer<I>> | Promise<FanOutSource<NoInfer<I>>>;
  tolerateFailures?: FailureTolerance;
}): StageDefinition<P, I, O> {
  assertName(definition.name, 'stage');
  return Object.freeze({ ...definition });
}

/** A stage as `job.stage(…)` declares it: its `fanOut` sees the params and the earlier stages. */
export interface TypedStage<P, Outputs extends StageOutputs, Name extends string, I, O> {
  /** Unique within the job. */
  name: Name;
  task: TaskDefinition<I, O>;
  /**
   * Computes the stage's task inputs, which must be what the task accepts. Must be
   * deterministic for the same params and earlier results (a crashed fan-out is run again).
   */
  fanOut(
    params: P,
    ctx: TypedFanOutContext<Outputs>,
  ): FanOutSource<NoInfer<I>> | Promise<FanOutSource<NoInfer<I>>>;
  /** Failed tasks tolerated before the job fails at the end of this stage. @defaultValue 0 */
  tolerateFailures?: FailureTolerance;
}

/** A name not used by an earlier stage (a repeated name is a type error). */
export type NewStageName<Name extends string, Outputs> = Name extends keyof Outputs ? never : Name;

/** Flattens an intersection for readable hovers and errors. */
export type Flat<T> = { [K in keyof T]: T[K] } & {};

/**
 * The stages of a job being declared, each `stage(…)` adding one: its `fanOut` gets the job's
 * params and reads earlier stages' results by name, typed.
 */
export interface JobStages<P, Outputs extends StageOutputs> {
  stage<const Name extends string, I, O>(
    definition: TypedStage<P, Outputs, Name & NewStageName<Name, Outputs>, I, O>,
  ): JobStages<P, Flat<Outputs & { readonly [K in Name]: O }>>;
  /** The stages declared so far, in order. */
  readonly list: readonly StageDefinition<P>[];
}

/** What `finalize` gets. */
export interface FinalizeContext<P, Outputs extends StageOutputs = StageOutputs> {
  jobId: string;
  params: P;
  /** Per stage, in order: name and counts. */
  stages: { name: string; total: number; succeeded: number; failed: number }[];
  /** Streams an earlier stage's succeeded results, as in `fanOut`. */
  results: string extends keyof Outputs
    ? <O = unknown>(stageName: string) => AsyncIterable<TaskResult<O>>
    : <K extends keyof Outputs & string>(stageName: K) => AsyncIterable<TaskResult<Outputs[K]>>;
  logger: Logger;
}

/**
 * A job: stages that run in order. Create with {@link defineJob}. `N` is its name, `P` its
 * validated params, `R` its result (what `finalize` returns), `Outputs` its stages' task outputs.
 */
export interface JobDefinition<
  N extends string = string,
  P = unknown,
  R = unknown,
  Outputs extends StageOutputs = StageOutputs,
  In = P,
> {
  readonly name: N;
  readonly params?: StandardSchemaV1<unknown, P>;
  readonly stages: readonly StageDefinition<P>[];
  finalize?(ctx: FinalizeContext<P, Outputs>): R | Promise<R>;
  /** A job not finished this many milliseconds after it is due is cancelled with `DEADLINE_EXCEEDED`. */
  readonly deadlineMs?: number;
  /**
   * Types only (never set): the job's params as `submit` takes them (`input`, the schema's input)
   * and as stages see them (`params`, validated), its result and its stages' outputs.
   */
  readonly '~types'?: {
    readonly input: In;
    readonly params: P;
    readonly result: R;
    readonly outputs: Outputs;
  };
}

/**
 * Declares a job. `params` (any Standard Schema) is validated at submit; `stages` declares the
 * stages in order, each `fanOut` getting the validated params and reading earlier stages' results
 * by name; `finalize` turns the job's results into the job result. Everything is typed from
 * `params` and the tasks: write `stages` before `finalize`.
 *
 * @example
 * ```ts
 * const sum = defineJob({
 *   name: 'sum',
 *   params: z.object({ n: z.number() }),
 *   stages: (job) => job
 *     .stage({ name: 'square', task: square, fanOut: ({ n }) => Array.from({ length: n }, (_, i) => i) })
 *     .stage({ name: 'total', task: add, async *fanOut(_params, ctx) {
 *       const values: number[] = [];
 *       for await (const r of ctx.results('square')) values.push(r.result);
 *       yield values;
 *     } }),
 *   finalize: async ({ results }) => { for await (const r of results('total')) return r.result; },
 * });
 * ```
 * @throws {TypeError} a name is invalid, there is no stage, or two stages share a name
 */
export function defineJob<
  const N extends string,
  S extends StandardSchemaV1,
  Outputs extends StageOutputs,
  R = undefined,
>(definition: {
  name: N;
  params: S;
  stages: (
    job: JobStages<StandardSchemaV1.InferOutput<S>, NoStages>,
  ) => JobStages<StandardSchemaV1.InferOutput<S>, Outputs>;
  finalize?: (ctx: FinalizeContext<StandardSchemaV1.InferOutput<S>, Outputs>) => R | Promise<R>;
  deadlineMs?: number;
}): JobDefinition<
  N,
  StandardSchemaV1.InferOutput<S>,
  Awaited<R>,
  Outputs,
  StandardSchemaV1.InferInput<S>
>;
export function defineJob<
  const N extends string,
  Outputs extends StageOutputs,
  R = undefined,
>(definition: {
  name: N;
  stages: (job: JobStages<undefined, NoStages>) => JobStages<undefined, Outputs>;
  finalize?: (ctx: FinalizeContext<undefined, Outputs>) => R | Promise<R>;
  deadlineMs?: number;
}): JobDefinition<N, undefined, Awaited<R>, Outputs>;
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
}): JobDefinition<
  N,
  StandardSchemaV1.InferOutput<S>,
  Awaited<R>,
  StageOutputs,
  StandardSchemaV1.InferInput<S>
>;
export function defineJob<const N extends string, P = undefined, R = undefined>(definition: {
  name: N;
  stages: readonly StageDefinition<P>[];
  finalize?: (ctx: FinalizeContext<P>) => R | Promise<R>;
  deadlineMs?: number;
}): JobDefinition<N, P, Awaited<R>>;
export function defineJob(
  definition: Omit<JobDefinition, 'stages'> & {
    stages:
      | JobDefinition['stages']
      | ((job: JobStages<unknown, NoStages>) => JobStages<unknown, StageOutputs>);
  },
): JobDefinition {
  assertName(definition.name, 'job');
  const stages =
    typeof definition.stages === 'function'
      ? definition.stages(jobStages([])).list
      : definition.stages;
  if (!Array.isArray(stages) || stages.length === 0) {
    throw new TypeError(`job "${definition.name}": "stages" must be a non-empty array`);
  }
  const names = new Set<string>();
  for (const [i, s] of stages.entries()) {
    if (typeof s?.fanOut !== 'function' || typeof s.task?.handler !== 'function') {
      throw new TypeError(
        `job "${definition.name}": stages[${i}] needs a "task" and a "fanOut" function`,
      );
    }
    if (names.has(s.name))
      throw new TypeError(`job "${definition.name}": duplicate stage name "${s.name}"`);
    names.add(s.name);
  }
  return Object.freeze({ ...definition, stages: Object.freeze([...stages]) }) as JobDefinition;
}

/** The immutable stage list behind `stages: (job) => job.stage(…)`. */
function jobStages(list: readonly StageDefinition<unknown>[]): JobStages<unknown, NoStages> {
  return {
    list,
    stage(definition) {
      assertName(definition.name, 'stage');
      const declared = Object.freeze({ ...definition }) as unknown as StageDefinition<unknown>;
      return jobStages([...list, declared]) as unknown as JobStages<unknown, never>;
    },
  };
}

function assertName(name: unknown, what: string): void {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.:-]{1,100}$/.test(name)) {
    throw new TypeError(
      `${what} "name" must be 1-100 characters of letters, digits, _ . : - (got ${JSON.stringify(name)})`,
    );
  }
}

/** Params type of a job definition (validated: the schema's output). */
export type JobParams<J> = J extends { readonly '~types'?: { readonly params: infer P } }
  ? P
  : unknown;
/** Params type of a job definition as `submit` takes them (the schema's input: defaults optional). */
export type JobInput<J> = J extends { readonly '~types'?: { readonly input: infer I } }
  ? I
  : unknown;
/** Result type of a job definition: what its `finalize` returns. */
export type JobResult<J> = J extends { readonly '~types'?: { readonly result: infer R } }
  ? R
  : unknown;
/** Task output types of a job definition's stages, by stage name. */
export type JobOutputs<J> = J extends { readonly '~types'?: { readonly outputs: infer O } }
  ? O extends StageOutputs
    ? O
    : StageOutputs
  : StageOutputs;

/**
 * A cron schedule of one job, typed by it: `params` — or what a `params` function returns, given
 * the fire time — are checked against the job's params. `createSwitchyard({ schedules })` types
 * schedules written in place; this is for schedules written elsewhere, such as a jobs module's
 * `schedules` export (loaded by the CLI, the container and the Functions app).
 *
 * @example
 * ```ts
 * export const schedules = [
 *   defineSchedule(report, { name: 'nightly', cron: '0 2 * * *', params: (fireAt) => ({ day: fireAt.toISOString() }) }),
 * ];
 * ```
 */
export function defineSchedule<const J extends { readonly name: string }>(
  job: J,
  schedule: Omit<ScheduleDefinition<J['name'], JobInput<J>>, 'job'>,
): ScheduleDefinition<J['name'], JobInput<J>> {
  return { ...schedule, job: job.name };
}
