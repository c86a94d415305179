/**
 * A job whose every result is known before it runs, for property and fault tests: stage 0 fans
 * out `width` tasks of the values 0 … width − 1, each later stage one task per result of the stage
 * before, and stage s maps v to (v + s) × 2 + 1. A run under any faults must produce exactly the
 * crash-free results ({@link ChainJob.expected}), which `exactlyOnceViolations` checks.
 * @module
 */
import { defineJob, defineTask, type JobDefinition, stage } from '../define.js';

/** Options of {@link chainJob}. */
export interface ChainJobOptions {
  /** The job's name (its task is `<name>-step`). */
  name: string;
  /** Tasks of the first stage. */
  width: number;
  /** Stages, one or more. */
  stages: number;
  /**
   * Whether this attempt of the task for value `v` of stage `s` fails: its handler then throws (a
   * transient failure, retried by the job's retry policy). @defaultValue never
   */
  fails?: (input: { v: number; s: number }, attempt: number) => boolean;
  /**
   * With a `finalize` that sums the last stage's results (the job's result is `{ sum }`), or
   * without one (no result: the job finishes where its last stage completes). @defaultValue true
   */
  finalize?: boolean;
}

/** A {@link chainJob} and what a crash-free run of it produces. */
export interface ChainJob {
  /** The job, to pass to `createSwitchyard({ jobs })`; it takes no params. */
  job: JobDefinition<string, undefined, { sum: number } | undefined>;
  /** What a crash-free, duplicate-free run produces. */
  expected: {
    /** Each stage's results in index order. */
    perStage: number[][];
    /** The job's result: `{ sum }` with a finalize, `undefined` without. */
    result: { sum: number } | undefined;
  };
}

/** Builds the job (see the module's description) and its crash-free results. */
export function chainJob(options: ChainJobOptions): ChainJob {
  const { name, width, stages, fails } = options;
  const finalized = options.finalize !== false;
  const step = defineTask({
    name: `${name}-step`,
    handler: (input: { v: number; s: number }, ctx) => {
      if (fails?.(input, ctx.attempt)) throw new Error(`transient ${input.s}:${input.v}`);
      return (input.v + input.s) * 2 + 1;
    },
  });
  const chain = Array.from({ length: stages }, (_, s) =>
    stage({
      name: `s${s}`,
      task: step,
      async *fanOut(_params: undefined, ctx) {
        if (s === 0) for (let v = 0; v < width; v++) yield { v, s };
        else for await (const r of ctx.results<number>(`s${s - 1}`)) yield { v: r.result, s };
      },
    }),
  );
  const last = `s${stages - 1}`;
  const job = finalized
    ? defineJob({
        name,
        stages: chain,
        finalize: async (ctx) => {
          let sum = 0;
          for await (const r of ctx.results<number>(last)) sum += r.result;
          return { sum };
        },
      })
    : defineJob({ name, stages: chain });
  let values = Array.from({ length: width }, (_, i) => i);
  const perStage: number[][] = [];
  for (let s = 0; s < stages; s++) {
    values = values.map((v) => (v + s) * 2 + 1);
    perStage.push(values);
  }
  const sum = values.reduce((a, b) => a + b, 0);
  return { job, expected: { perStage, result: finalized ? { sum } : undefined } };
}
