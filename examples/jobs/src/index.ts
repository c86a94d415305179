/**
 * The seed's example job, used by the demo, the examples, the tests and the benchmarks.
 *
 * `hello_world` with param `n`: stage `greet` fans out n tasks; stage `reply` fans out one task
 * per greeting, streamed from stage 1's results; `finalize` returns the counts.
 * @module
 */
import { defineJob, defineTask, type TaskContext } from '@switchyard/core';
import { z } from 'zod';

export const helloParams = z.object({
  /** Number of greetings (stage 1 tasks). */
  n: z.number().int().min(0).max(1_000_000).default(1000),
  /** Simulated work per task, ms (0: none). */
  workMs: z.number().int().min(0).max(60_000).default(0),
});

export type HelloParams = z.output<typeof helloParams>;

/** Simulated work that stops early when the attempt is aborted (timeout or shutdown). */
const work = (ms: number, ctx: TaskContext) => {
  if (ms <= 0) return undefined;
  const signal = ctx.signal;
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
};

export const greet = defineTask({
  name: 'greet',
  input: z.object({ i: z.number().int(), workMs: z.number().int() }),
  handler: async ({ i, workMs }, ctx) => {
    await work(workMs, ctx);
    return `hello #${i}`;
  },
});

export const reply = defineTask({
  name: 'reply',
  input: z.object({ greeting: z.string(), workMs: z.number().int() }),
  handler: async ({ greeting, workMs }, ctx) => {
    await work(workMs, ctx);
    return `re: ${greeting}`;
  },
});

export const helloWorld = defineJob({
  name: 'hello_world',
  params: helloParams,
  stages: (job) =>
    job
      .stage({
        name: 'greet',
        task: greet,
        *fanOut({ n, workMs }) {
          for (let i = 0; i < n; i++) yield { i, workMs };
        },
      })
      .stage({
        name: 'reply',
        task: reply,
        async *fanOut({ workMs }, ctx) {
          for await (const { result } of ctx.results('greet')) yield { greeting: result, workMs };
        },
      }),
  finalize: ({ stages }) => ({
    greeted: stages[0]?.succeeded ?? 0,
    replied: stages[1]?.succeeded ?? 0,
  }),
});
