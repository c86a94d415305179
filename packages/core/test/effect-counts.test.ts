import { describe, expect, it } from 'vitest';
import { defineJob, defineTask, memoryStore, stage } from '../src/index.js';
import { countEffects, exactlyOnceViolations } from '../src/testing/index.js';
import { startYards } from './harness.js';

/** A two-stage job run to the end on memory, its effects counted. */
async function finishedJob() {
  const inner = memoryStore();
  const { store, counts } = countEffects(inner);
  const double = defineTask({ name: 'double', handler: (n: number) => n * 2 });
  const job = defineJob({
    name: 'two',
    stages: [
      stage({ name: 'a', task: double, fanOut: () => [1, 2, 3] }),
      stage({
        name: 'b',
        task: double,
        async *fanOut(_p: undefined, ctx) {
          for await (const r of ctx.results<number>('a')) yield r.result;
        },
      }),
    ],
    finalize: () => ({ done: true }),
  });
  const { yard, stop } = startYards([job], { store });
  const { jobId } = await yard.submit('two', undefined);
  await yard.waitFor(jobId, { pollIntervalMs: 10 });
  await stop();
  return { yard, inner, counts, jobId };
}

describe('exactlyOnceViolations', () => {
  it('finds nothing in a clean run, and names each effect that happened other than once', async () => {
    const { yard, inner, counts, jobId } = await finishedJob();
    const expectation = {
      store: inner,
      counts,
      jobId,
      perStage: [
        [2, 4, 6],
        [4, 8, 12],
      ],
      result: { done: true },
      results: (s: number) => yard.results(jobId, s),
    };
    expect(await exactlyOnceViolations(expectation)).toEqual([]);

    const taskId = [...counts.applied.keys()][0]!;
    const doubled = {
      applied: new Map([...counts.applied, [taskId, 2]]),
      advanced: new Map([[0, 1]]),
      finished: 2,
    };
    const violations = await exactlyOnceViolations({
      ...expectation,
      counts: doubled,
      perStage: [
        [2, 4, 6],
        [4, 8, 13],
      ],
      result: { done: false },
    });
    expect(violations).toEqual([
      'result {"done":true} != {"done":false}',
      'job finished 2 times',
      'stage 1 advanced 0 times',
      'stage 1 results [4,8,12] != [4,8,13]',
      `outcomes applied for 6 of 6 tasks; more than once: [["${taskId}",2]]`,
    ]);
  });
});
