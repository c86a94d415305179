// A user's application, compiled against the packed tarballs: a three-stage job typed from its
// params to its result, run on the in-memory drivers. Exits non-zero if the result is wrong.
import {
  createSwitchyard,
  defineJob,
  defineTask,
  type JobResult,
  memoryStore,
  memoryTransport,
} from '@switchyard/core';
import { z } from 'zod';

const measure = defineTask({
  name: 'measure',
  input: z.object({ word: z.string() }),
  handler: ({ word }) => word.length,
});
const square = defineTask({ name: 'square', handler: (n: number) => n * n });
const total = defineTask({
  name: 'total',
  handler: (values: number[]) => values.reduce((a, b) => a + b, 0),
});

const words = defineJob({
  name: 'words',
  params: z.object({ words: z.array(z.string()) }),
  stages: (job) =>
    job
      .stage({
        name: 'measure',
        task: measure,
        fanOut: ({ words }) => words.map((word) => ({ word })),
      })
      .stage({
        name: 'square',
        task: square,
        async *fanOut(_params, ctx) {
          for await (const r of ctx.results('measure')) yield r.result;
        },
      })
      .stage({
        name: 'total',
        task: total,
        async *fanOut(_params, ctx) {
          const values: number[] = [];
          for await (const r of ctx.results('square')) values.push(r.result);
          yield values;
        },
      }),
  finalize: async ({ results }) => {
    for await (const r of results('total')) return { total: r.result };
    return { total: -1 };
  },
});

const yard = createSwitchyard({
  jobs: [words],
  store: memoryStore(),
  transports: [memoryTransport()],
});
const stop = new AbortController();
const working = yard.work({ signal: stop.signal });
const { jobId } = await yard.submit('words', { words: ['a', 'bb', 'ccc'] });
const done = await yard.waitFor(jobId, { pollIntervalMs: 10 });
stop.abort();
await working;
await yard.close();
const result: JobResult<typeof words> | undefined = done.result;
if (done.status !== 'succeeded' || result?.total !== 1 + 4 + 9) {
  throw new Error(`job ${done.status}: ${JSON.stringify(result)}`);
}
console.log(`app: ${done.status}, total ${result.total}`);
