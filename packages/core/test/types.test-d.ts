/**
 * Type tests: what the compiler must accept and reject in a user's job. Checked by `tsc` (`npm run
 * typecheck`) and by vitest's typecheck mode (`npm test`); each `@ts-expect-error` fails the check
 * when the line below it compiles.
 */
import { describe, expectTypeOf, test } from 'vitest';
import { z } from 'zod';
import {
  createSwitchyard,
  defineJob,
  defineSchedule,
  defineTask,
  type JobId,
  type JobResult,
  type JobView,
  memoryStore,
  memoryTransport,
  type TaskResult,
} from '../src/index.js';

const square = defineTask({
  name: 'square',
  input: z.object({ x: z.number() }),
  handler: ({ x }) => x * x,
});
const sum = defineTask({ name: 'sum', handler: (values: number[]) => values.length });
const label = defineTask({ name: 'label', handler: (total: number) => `${total} squares` });

const squares = defineJob({
  name: 'squares',
  params: z.object({ n: z.number(), tag: z.string() }),
  stages: (job) =>
    job
      .stage({
        name: 'square',
        task: square,
        fanOut: ({ n }) => {
          expectTypeOf(n).toEqualTypeOf<number>();
          return Array.from({ length: n }, (_, x) => ({ x }));
        },
      })
      .stage({
        name: 'sum',
        task: sum,
        async *fanOut({ tag }, ctx) {
          expectTypeOf(tag).toEqualTypeOf<string>();
          const values: number[] = [];
          for await (const r of ctx.results('square')) {
            expectTypeOf(r).toEqualTypeOf<TaskResult<number>>();
            values.push(r.result);
          }
          yield values;
        },
      })
      .stage({
        name: 'label',
        task: label,
        async *fanOut(_params, ctx) {
          for await (const r of ctx.results('sum')) yield r.result;
        },
      }),
  finalize: async ({ results, params }) => {
    expectTypeOf(params).toEqualTypeOf<{ n: number; tag: string }>();
    for await (const r of results('label')) return { label: r.result };
    return { label: 'none' };
  },
});

const noParams = defineJob({
  name: 'no-params',
  stages: (job) => job.stage({ name: 'one', task: sum, fanOut: () => [[1, 2]] }),
});

describe('job definitions', () => {
  test('the result type is what finalize returns', () => {
    expectTypeOf<JobResult<typeof squares>>().toEqualTypeOf<{ label: string }>();
    expectTypeOf<JobResult<typeof noParams>>().toEqualTypeOf<undefined>();
  });

  test('params reach every fanOut: a missing field or a wrong type does not compile', () => {
    defineJob({
      name: 'bad-params',
      params: z.object({ n: z.number() }),
      stages: (job) =>
        job.stage({
          name: 'square',
          task: square,
          // @ts-expect-error: `m` is not a param
          fanOut: ({ m }) => [{ x: m }],
        }),
    });
    defineJob({
      name: 'bad-param-type',
      params: z.object({ n: z.number() }),
      stages: (job) =>
        job.stage({
          name: 'square',
          task: square,
          fanOut: ({ n }) => {
            // @ts-expect-error: `n` is a number
            const s: string = n;
            return [{ x: s.length }];
          },
        }),
    });
  });

  test("a stage's task input is checked against what its fanOut yields", () => {
    defineJob({
      name: 'bad-input',
      params: z.object({ n: z.number() }),
      stages: (job) =>
        job.stage({
          name: 'square',
          task: square,
          // @ts-expect-error: square takes { x: number }
          fanOut: ({ n }) => [{ y: n }],
        }),
    });
  });

  test('results() takes only earlier stage names', () => {
    defineJob({
      name: 'typo',
      params: z.object({ n: z.number() }),
      stages: (job) =>
        job.stage({ name: 'square', task: square, fanOut: ({ n }) => [{ x: n }] }).stage({
          name: 'sum',
          task: sum,
          async *fanOut(_params, ctx) {
            // @ts-expect-error: misspelt stage name
            for await (const r of ctx.results('sqaure')) yield [r.result as number];
            // @ts-expect-error: a stage cannot read its own results
            for await (const r of ctx.results('sum')) yield [r.result as number];
          },
        }),
      finalize: async ({ results }) => {
        // @ts-expect-error: not a stage of this job
        for await (const r of results('total')) return r.result;
      },
    });
  });

  test('two stages cannot share a name', () => {
    defineJob({
      name: 'twice',
      stages: (job) =>
        job
          .stage({ name: 'one', task: sum, fanOut: () => [[1]] })
          // @ts-expect-error: duplicate stage name
          .stage({ name: 'one', task: sum, fanOut: () => [[2]] }),
    });
  });
});

describe('a Switchyard built from typed jobs', () => {
  const yard = createSwitchyard({
    jobs: [squares, noParams],
    store: memoryStore(),
    transports: [memoryTransport()],
  });

  test('submit checks the job name and its params', async () => {
    const { jobId } = await yard.submit('squares', { n: 3, tag: 'a' });
    expectTypeOf(jobId).toEqualTypeOf<JobId<'squares'>>();
    // @ts-expect-error: unknown job
    await yard.submit('squarez', { n: 3, tag: 'a' });
    // @ts-expect-error: `n` must be a number
    await yard.submit('squares', { n: '3', tag: 'a' });
  });

  test('submit takes params as the schema inputs them: a field with a default may be left out', async () => {
    const withDefaults = defineJob({
      name: 'defaults',
      params: z.object({ n: z.number().default(10) }),
      stages: (job) =>
        job.stage({
          name: 'square',
          task: square,
          fanOut: ({ n }) => {
            expectTypeOf(n).toEqualTypeOf<number>();
            return [{ x: n }];
          },
        }),
    });
    const defaults = createSwitchyard({
      jobs: [withDefaults],
      store: memoryStore(),
      transports: [memoryTransport()],
    });
    await defaults.submit('defaults', {});
    const { jobId } = await defaults.submit('defaults', { n: 3 });
    expectTypeOf((await defaults.waitFor(jobId)).params).toEqualTypeOf<{ n: number }>();
  });

  test('waitFor, getJob and results have the job types for a job id from submit', async () => {
    const { jobId } = await yard.submit('squares', { n: 3, tag: 'a' });
    const done = await yard.waitFor(jobId);
    expectTypeOf(done.result).toEqualTypeOf<{ label: string } | undefined>();
    expectTypeOf(done.params).toEqualTypeOf<{ n: number; tag: string }>();
    const view = await yard.getJob(jobId);
    expectTypeOf(view).toEqualTypeOf<
      JobView<{ label: string }, { n: number; tag: string }> | undefined
    >();
    expectTypeOf(yard.results(jobId, 'sum')).toEqualTypeOf<AsyncIterable<TaskResult<number>>>();
    // @ts-expect-error: not a stage of job "squares"
    yard.results(jobId, 'sqaure');
  });

  test('a job id given as a plain string yields unknown results', async () => {
    const jobId: string = 'from-a-url';
    expectTypeOf((await yard.waitFor(jobId)).result).toEqualTypeOf<unknown>();
    expectTypeOf(yard.results<number>(jobId, 'anything')).toEqualTypeOf<
      AsyncIterable<TaskResult<number>>
    >();
  });
});

describe('schedules', () => {
  const options = { store: memoryStore(), transports: [memoryTransport()] };

  test("a params function gets the fire time as a Date and returns the job's params", () => {
    createSwitchyard({
      ...options,
      jobs: [squares, noParams],
      schedules: [
        {
          name: 'nightly',
          job: 'squares',
          cron: '0 2 * * *',
          params: (fireAt) => {
            expectTypeOf(fireAt).toEqualTypeOf<Date>();
            return { n: fireAt.getUTCDate(), tag: 'nightly' };
          },
        },
        { name: 'hourly', job: 'squares', cron: '0 * * * *', params: { n: 1, tag: 'hourly' } },
        { name: 'minutely', job: 'no-params', cron: '* * * * *' },
      ],
    });
  });

  test("params of the wrong type, or a job that is not one of the Switchyard's, do not compile", () => {
    createSwitchyard({
      ...options,
      jobs: [squares, noParams],
      schedules: [
        {
          name: 'nightly',
          job: 'squares',
          cron: '0 2 * * *',
          // @ts-expect-error: `n` must be a number
          params: (fireAt) => ({ n: fireAt.toISOString(), tag: 'nightly' }),
        },
      ],
    });
    createSwitchyard({
      ...options,
      jobs: [squares, noParams],
      schedules: [
        // @ts-expect-error: `tag` is missing
        { name: 'hourly', job: 'squares', cron: '0 * * * *', params: { n: 1 } },
      ],
    });
    createSwitchyard({
      ...options,
      jobs: [squares, noParams],
      // @ts-expect-error: unknown job
      schedules: [{ name: 'typo', job: 'squarez', cron: '0 * * * *' }],
    });
  });

  test('a job whose params are unknown takes any params, and fireAt is still a Date', () => {
    // As a host loads a jobs module at run time: names only, params unknown.
    const untyped: readonly { readonly name: string }[] = [squares];
    createSwitchyard({
      ...options,
      jobs: untyped,
      schedules: [
        {
          name: 'nightly',
          job: 'squares',
          cron: '0 2 * * *',
          params: (fireAt) => {
            expectTypeOf(fireAt).toEqualTypeOf<Date>();
            return { day: fireAt.getUTCDate() };
          },
        },
      ],
    });
  });
});

describe('defineSchedule', () => {
  test('types a schedule written apart from the Switchyard by its job', () => {
    const nightly = defineSchedule(squares, {
      name: 'nightly',
      cron: '0 2 * * *',
      params: (fireAt) => {
        expectTypeOf(fireAt).toEqualTypeOf<Date>();
        return { n: fireAt.getUTCDate(), tag: 'nightly' };
      },
    });
    expectTypeOf(nightly.job).toEqualTypeOf<'squares'>();
    createSwitchyard({
      jobs: [squares, noParams],
      store: memoryStore(),
      transports: [memoryTransport()],
      schedules: [nightly, defineSchedule(noParams, { name: 'minutely', cron: '* * * * *' })],
    });
    // @ts-expect-error: `tag` is missing
    defineSchedule(squares, { name: 'bad', cron: '0 * * * *', params: () => ({ n: 1 }) });
    createSwitchyard({
      jobs: [noParams],
      store: memoryStore(),
      transports: [memoryTransport()],
      // @ts-expect-error: a schedule of a job this Switchyard does not have
      schedules: [nightly],
    });
  });
});
