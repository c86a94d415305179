import { afterEach, describe, expect, test } from 'vitest';
import { z } from 'zod';
import {
  createSwitchyard,
  defineJob,
  defineTask,
  memoryStore,
  memoryTransport,
  type Switchyard,
} from '../src/index.js';

const square = defineTask({
  name: 'square',
  input: z.object({ x: z.number() }),
  handler: ({ x }) => x * x,
});
const total = defineTask({
  name: 'total',
  handler: (values: number[]) => values.reduce((a, b) => a + b, 0),
});

const squares = defineJob({
  name: 'squares',
  params: z.object({ n: z.number().int() }),
  stages: (job) =>
    job
      .stage({
        name: 'square',
        task: square,
        fanOut: ({ n }) => Array.from({ length: n }, (_, x) => ({ x })),
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
    for await (const r of results('total')) return { sum: r.result };
    return { sum: -1 };
  },
});

describe('defineJob with stages declared one by one', () => {
  let yard: Switchyard | undefined;
  afterEach(async () => yard?.close());

  test('runs its stages in order and finalize reads the last one', async () => {
    const typed = createSwitchyard({
      jobs: [squares],
      store: memoryStore(),
      transports: [memoryTransport()],
    });
    yard = typed;
    const stop = new AbortController();
    const working = typed.work({ signal: stop.signal });
    const { jobId } = await typed.submit('squares', { n: 4 });
    const done = await typed.waitFor(jobId, { pollIntervalMs: 10 });
    stop.abort();
    await working;
    expect(done.status).toBe('succeeded');
    expect(done.result).toEqual({ sum: 0 + 1 + 4 + 9 });
    const squared: number[] = [];
    for await (const r of typed.results(jobId, 'square')) squared.push(r.result);
    expect(squared).toEqual([0, 1, 4, 9]);
  });

  test('lists the declared stages in order on the definition', () => {
    expect(squares.stages.map((s) => s.name)).toEqual(['square', 'total']);
    expect(Object.isFrozen(squares.stages)).toBe(true);
  });

  test('rejects a repeated stage name and an empty job when declared', () => {
    const noop = defineTask({ name: 'noop', handler: () => 1 });
    expect(() =>
      defineJob({
        name: 'twice',
        stages: (job) =>
          job
            .stage({ name: 'one', task: noop, fanOut: () => [1] })
            // @ts-expect-error: duplicate stage name
            .stage({ name: 'one', task: noop, fanOut: () => [1] }),
      }),
    ).toThrow('duplicate stage name "one"');
    expect(() => defineJob({ name: 'empty', stages: (job) => job })).toThrow('non-empty');
    expect(() =>
      defineJob({
        name: 'bad-stage',
        stages: (job) => job.stage({ name: 'has space', task: noop, fanOut: () => [1] }),
      }),
    ).toThrow('stage "name"');
  });
});
