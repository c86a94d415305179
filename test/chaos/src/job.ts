/**
 * The chaos job: `hello_world`-shaped, three stages, random task durations, deterministic transient
 * failures (by stage, index and attempt, so the results never depend on crashes or retries), and a
 * finalize with an external, counted effect.
 * @module
 */
import { randomUUID } from 'node:crypto';
import { defineJob, defineTask, stage } from '@switchyard/core';
import { z } from 'zod';

export const CHAOS_JOB = 'chaos';
/**
 * The same job without a finalize: its last stage's completion finishes it in the completing
 * worker, with no finish message, so kills land in that window too.
 */
export const CHAOS_PLAIN_JOB = 'chaos_plain';

export const chaosParams = z.object({
  /** Tasks of the first stage (and of the second). */
  n: z.number().int().min(0).max(1_000_000),
  /** Mixed into every result so two jobs never share values. */
  seed: z.number().int().min(0).max(1_000_000),
  /** Stage-2 results summed per stage-3 task. */
  chunk: z.number().int().min(1).max(10_000).default(10),
  /** Upper bound of the random task duration, ms. */
  maxWorkMs: z.number().int().min(0).max(1000).default(4),
  /** Transient failures on (1 in `failEvery`) tasks; 0 disables them. */
  failEvery: z.number().int().min(0).max(1000).default(8),
  /** Flow-control keys the first two stages' tasks spread over, by index (see {@link ChaosFlow}). */
  keys: z.number().int().min(1).max(1000).default(4),
  /**
   * Stage-2 tasks whose index is a multiple of `fragile` fail on every attempt until the job is
   * healed (`FinalizeEffect.healed`): the job fails, then succeeds once healed and retried. 0: none.
   */
  fragile: z.number().int().min(0).max(1_000_000).default(0),
});
export type ChaosParams = z.output<typeof chaosParams>;

/**
 * Flow limits of the first two stages' tasks (`split`, `square`), keyed by `k` (index mod
 * `keys`): the crash campaign's `--key-limit`, the multi-process flow test's rate limit.
 */
export interface ChaosFlow {
  /** At most this many handlers of one key at once, across workers. */
  keyLimit?: number;
  /** `square` only: at most `limit` starts of one key in any `periodMs` window. */
  rate?: { limit: number; periodMs: number };
}

/**
 * One handler run as recorded: its start (ms since the epoch; every run) and, for a flow-limited
 * run, its id and the flow key it ran under.
 */
export interface RunRecord {
  jobId: string;
  taskId: string;
  attempt: number;
  /** Unique per handler run. */
  runId?: string;
  /** `<task>/<key>` of a flow-limited task. */
  key?: string;
  startedAt?: number;
}

/** The finalize's side effect, outside the engine (a row keyed by job id, plus a call counter). */
export interface FinalizeEffect {
  finalized(jobId: string, result: ChaosResult): Promise<void>;
  /**
   * Records that a handler started an attempt, before it does any work; the handler waits for it,
   * so a recorded attempt count above the recorded runs is an attempt no handler ever made.
   */
  ran?(run: RunRecord): Promise<void>;
  /**
   * Records when a flow-limited handler run ended; the handler waits for it, so a run without an
   * end had not returned (its key slot was still held) when its worker died.
   */
  ended?(run: { runId: string; endedAt: number }): Promise<void>;
  /** Whether a job's fragile tasks may succeed now (see `fragile`). */
  healed?(jobId: string): Promise<boolean>;
}

export interface ChaosResult {
  total: number;
  tasks: [number, number, number];
}

/** Stage 1: a pseudo-random value per index. */
export const splitValue = (i: number, seed: number): number => (i * 7919 + seed * 31) % 10_007;
/** Stage 2: one value per stage-1 result. */
export const squareValue = (v: number): number => (v * v) % 1_000_003;

/** How many attempts of this task fail before one succeeds (deterministic, 0 for most). */
export function transientFailures(stageIndex: number, index: number, failEvery: number): number {
  if (failEvery <= 0) return 0;
  const h = (Math.imul(index + 1, 2_654_435_761) ^ Math.imul(stageIndex + 7, 40_503)) >>> 0;
  if (h % failEvery !== 0) return 0;
  return h % (failEvery * 4) === 0 ? 2 : 1;
}

export class TransientError extends Error {
  override name = 'TransientError';
}

export class FragileError extends Error {
  override name = 'FragileError';
}

const work = (maxMs: number) =>
  maxMs <= 0
    ? Promise.resolve()
    : new Promise<void>((r) => setTimeout(r, Math.floor(Math.random() * (maxMs + 1))));

const fail = (stageIndex: number, index: number, attempt: number, failEvery: number) => {
  if (attempt <= transientFailures(stageIndex, index, failEvery))
    throw new TransientError(`transient failure of ${stageIndex}/${index} on attempt ${attempt}`);
};

// Retries are cheap and plentiful: crashes also consume attempts (a claim counts one), and the
// campaign must never poison a task.
const retry = { maxAttempts: 20, initialDelayMs: 20, factor: 2, maxDelayMs: 200, jitter: 0.5 };

type Ctx = { jobId: string; taskId: string; attempt: number };

/** The three stages' tasks; each records its run through `effect.ran` first. */
function chaosTasks(effect: FinalizeEffect, flow: ChaosFlow = {}) {
  const ran = (ctx: Ctx) => effect.ran?.({ ...pick(ctx), startedAt: Date.now() });
  const limited = flow.keyLimit !== undefined || flow.rate !== undefined;
  /** A flow-limited run: its start and key recorded first, its end before it returns. */
  const timed = async <T>(task: string, k: number, ctx: Ctx, body: () => Promise<T>) => {
    if (!limited) {
      await ran(ctx);
      return body();
    }
    const startedAt = Date.now();
    const runId = randomUUID();
    await effect.ran?.({ ...pick(ctx), runId, key: `${task}/${k}`, startedAt });
    try {
      return await body();
    } finally {
      await effect.ended?.({ runId, endedAt: Date.now() });
    }
  };
  const key = (input: { k: number }) => String(input.k);
  const concurrency =
    flow.keyLimit === undefined ? {} : { concurrency: { limit: flow.keyLimit, key } };
  const split = defineTask({
    name: 'split',
    input: z.object({
      i: z.number().int(),
      seed: z.number().int(),
      w: z.number(),
      f: z.number(),
      k: z.number().int().default(0),
    }),
    retry,
    ...concurrency,
    handler: ({ i, seed, w, f, k }, ctx) =>
      timed('split', k, ctx, async () => {
        await work(w);
        fail(0, ctx.index, ctx.attempt, f);
        return splitValue(i, seed);
      }),
  });
  const square = defineTask({
    name: 'square',
    input: z.object({
      v: z.number().int(),
      w: z.number(),
      f: z.number(),
      k: z.number().int().default(0),
      g: z.number().optional(),
    }),
    retry,
    ...concurrency,
    ...(flow.rate ? { rateLimit: { ...flow.rate, key } } : {}),
    handler: ({ v, w, f, k, g }, ctx) =>
      timed('square', k, ctx, async () => {
        await work(w);
        fail(1, ctx.index, ctx.attempt, f);
        if (g && ctx.index % g === 0 && !(await effect.healed?.(ctx.jobId)))
          throw new FragileError(`fragile task ${ctx.taskId} fails until its job is healed`);
        return squareValue(v);
      }),
  });
  const sum = defineTask({
    name: 'sum',
    input: z.object({ values: z.array(z.number().int()), w: z.number(), f: z.number() }),
    retry,
    handler: async ({ values, w, f }, ctx) => {
      await ran(ctx);
      await work(w);
      fail(2, ctx.index, ctx.attempt, f);
      return values.reduce((a, b) => a + b, 0);
    },
  });
  return { split, square, sum };
}

const pick = (ctx: Ctx) => ({ jobId: ctx.jobId, taskId: ctx.taskId, attempt: ctx.attempt });

/** The chaos job's three stages; `flow` limits the first two. */
function chaosStages(effect: FinalizeEffect, flow?: ChaosFlow) {
  const { split, square, sum } = chaosTasks(effect, flow);
  return [
    stage({
      name: 'split',
      task: split,
      *fanOut({ n, seed, maxWorkMs, failEvery, keys }: ChaosParams) {
        for (let i = 0; i < n; i++) yield { i, seed, w: maxWorkMs, f: failEvery, k: i % keys };
      },
    }),
    stage({
      name: 'square',
      task: square,
      async *fanOut({ maxWorkMs, failEvery, keys, fragile }: ChaosParams, ctx) {
        for await (const { index, result } of ctx.results<number>('split'))
          yield {
            v: result,
            w: maxWorkMs,
            f: failEvery,
            k: index % keys,
            ...(fragile ? { g: fragile } : {}),
          };
      },
    }),
    stage({
      name: 'sum',
      task: sum,
      async *fanOut({ chunk, maxWorkMs, failEvery }: ChaosParams, ctx) {
        let values: number[] = [];
        for await (const { result } of ctx.results<number>('square')) {
          values.push(result);
          if (values.length === chunk) {
            yield { values, w: maxWorkMs, f: failEvery };
            values = [];
          }
        }
        if (values.length > 0) yield { values, w: maxWorkMs, f: failEvery };
      },
    }),
  ] as const;
}

/** The chaos job; `effect` records what finalize did; `flow` limits its first two stages. */
export function chaosJob(effect: FinalizeEffect, flow?: ChaosFlow) {
  return finalizedJob(chaosStages(effect, flow), effect);
}

/**
 * Both chaos jobs on one set of stages, as a worker or a submitter defines them: {@link chaosJob}
 * and the same without a finalize ({@link CHAOS_PLAIN_JOB}), which succeeds with no result.
 */
export function chaosJobs(effect: FinalizeEffect, flow?: ChaosFlow) {
  const stages = chaosStages(effect, flow);
  return [
    finalizedJob(stages, effect),
    defineJob({ name: CHAOS_PLAIN_JOB, params: chaosParams, stages }),
  ] as const;
}

function finalizedJob(stages: ReturnType<typeof chaosStages>, effect: FinalizeEffect) {
  return defineJob({
    name: CHAOS_JOB,
    params: chaosParams,
    stages,
    finalize: async ({ jobId, stages, results }): Promise<ChaosResult> => {
      let total = 0;
      for await (const { result } of results<number>('sum')) total += result;
      const out: ChaosResult = {
        total,
        tasks: [stages[0]?.succeeded ?? 0, stages[1]?.succeeded ?? 0, stages[2]?.succeeded ?? 0],
      };
      await effect.finalized(jobId, out);
      return out;
    },
  });
}

/** What a crash-free run produces: every stage's results in task order and the job result. */
export interface Expected {
  stages: [number[], number[], number[]];
  result: ChaosResult;
}

export function expectedResults(
  params: Pick<ChaosParams, 'n' | 'seed'> & { chunk?: number },
): Expected {
  const chunk = params.chunk ?? 10;
  const s1 = Array.from({ length: params.n }, (_, i) => splitValue(i, params.seed));
  const s2 = s1.map(squareValue);
  const s3: number[] = [];
  for (let i = 0; i < s2.length; i += chunk)
    s3.push(s2.slice(i, i + chunk).reduce((a, b) => a + b, 0));
  return {
    stages: [s1, s2, s3],
    result: { total: s3.reduce((a, b) => a + b, 0), tasks: [s1.length, s2.length, s3.length] },
  };
}
