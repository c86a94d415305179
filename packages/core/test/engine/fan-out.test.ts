import { describe, expect, it, vi } from 'vitest';
import { fanOut, UserCodeError, userChunks } from '../../src/engine/stages/fan-out.js';
import type { TaskEnvelope, TasksEnvelope } from '../../src/envelope.js';
import { isSwitchyardError } from '../../src/errors.js';
import {
  type FakeEngine,
  fakeEngine,
  type Inputs,
  type StageSpec,
  testJob,
} from './fake-context.js';

/** A job over `inputs` whose stage 0 has started (nothing inserted): the fan-out's starting point. */
async function started(fake: FakeEngine, inputs: unknown[]) {
  const job = fake.ctx.settings.jobs.get('fan')!;
  const jobId = `fan-${Math.random().toString(36).slice(2)}`;
  await fake.store.createJob({
    id: jobId,
    name: 'fan',
    params: { inputs },
    transport: 'memory',
    stageCount: 2,
  });
  const { job: record } = await fake.store.startStage(jobId, 0, 's0');
  return {
    jobId,
    run: () =>
      fanOut(fake.ctx, {
        job: record,
        stage: 0,
        definition: job.stages[0]!,
        advance: fake.modules.advance,
        window: fake.modules.window,
      }),
  };
}

const fanJob = (spec: StageSpec = {}) => testJob({ name: 'fan', stages: [spec, {}] });
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('fanOut', () => {
  it('inserts every task, sends one message each, and seals the stage with its total', async () => {
    const fake = fakeEngine({ jobs: [fanJob()], batching: { chunkSize: 3 } });
    const { jobId, run } = await started(fake, range(7));
    await run();
    const tasks = (await fake.store.listTasks(jobId, { stage: 0 })).tasks;
    expect(tasks.map((t) => t.input)).toEqual(range(7));
    const sent = fake.transport.envelopes('task') as TaskEnvelope[];
    expect(sent.map((e) => e.taskId).sort()).toEqual(tasks.map((t) => t.id).sort());
    expect(sent.every((e) => e.attempts === undefined)).toBe(true);
    const [stage] = await fake.store.getStages(jobId);
    expect(stage).toMatchObject({ status: 'sealed', total: 7, created: 7 });
  });

  it('sends packs of packTasks when the transport is configured so', async () => {
    const fake = fakeEngine({ jobs: [fanJob()], batching: { packTasks: 4, chunkSize: 10 } });
    const { run } = await started(fake, range(10));
    await run();
    const packs = fake.transport.envelopes('task') as TasksEnvelope[];
    expect(packs.map((p) => p.tasks.length)).toEqual([4, 4, 2]);
  });

  it("spreads a small stage over messages when packing by the transport's recommendation", async () => {
    const sizesOf = async (batching: { window?: false }) => {
      const fake = fakeEngine({ jobs: [fanJob()], limits: { packTasks: 64 }, batching });
      const { run } = await started(fake, range(40));
      await run();
      return fake.transport.envelopes('task').map((e) => (e.kind === 'tasks' ? e.tasks.length : 1));
    };
    // Through the window's first release (the default) and sent directly: 14 messages, not one.
    expect(await sizesOf({})).toEqual([...Array(13).fill(3), 1]);
    expect(await sizesOf({ window: false })).toEqual([...Array(13).fill(3), 1]);
  });

  it('resumed, inserts only what is missing and sends only open tasks, marked resumed', async () => {
    const fake = fakeEngine({ jobs: [fanJob()], batching: { packTasks: 10, window: false } });
    const { jobId, run } = await started(fake, range(5));
    await fake.store.insertTasks(
      jobId,
      0,
      [0, 1, 2].map((index) => ({ index, input: index })),
    );
    await fake.store.completeTasks([
      { jobId, stage: 0, index: 1, taskId: `${jobId}.0.1`, status: 'succeeded', result: 1 },
    ]);
    await run();
    const packs = fake.transport.envelopes('task') as TasksEnvelope[];
    expect(packs.flatMap((p) => p.tasks.map((t) => t.index))).toEqual([0, 2, 3, 4]);
    expect(packs.every((p) => p.resumed === true)).toBe(true);
    expect((await fake.store.getStages(jobId))[0]).toMatchObject({ total: 5, created: 5 });
  });

  it('with a window, inserts every task but sends only the window; finished tasks release the next', async () => {
    const fake = fakeEngine({ jobs: [fanJob()], batching: { chunkSize: 3, window: 4 } });
    const { jobId, run } = await started(fake, range(10));
    await run();
    const sent = () => (fake.transport.envelopes('task') as TaskEnvelope[]).map((e) => e.taskId);
    expect(sent()).toEqual(range(4).map((i) => `${jobId}.0.${i}`));
    expect((await fake.store.getStages(jobId))[0]).toMatchObject({
      status: 'sealed',
      total: 10,
      created: 10,
      released: 4,
    });
    await fake.modules.barrier.complete({
      jobId,
      stage: 0,
      index: 0,
      taskId: `${jobId}.0.0`,
      status: 'succeeded',
      result: 0,
    });
    await vi.waitFor(() => expect(sent()).toHaveLength(5));
    expect(sent()[4]).toBe(`${jobId}.0.4`);
  });

  it('with a window, a resumed fan-out re-sends the open tasks released before, once', async () => {
    const fake = fakeEngine({
      jobs: [fanJob()],
      batching: { chunkSize: 10, window: 3, packTasks: 10 },
    });
    const { jobId, run } = await started(fake, range(6));
    // The first try inserted the chunk and released tasks 0–2, then crashed before sending.
    await fake.store.insertTasks(
      jobId,
      0,
      range(6).map((index) => ({ index, input: index })),
    );
    await fake.store.releaseTasks([{ jobId, stage: 0, window: 3, fanOut: true }]);
    await run();
    const packs = fake.transport.envelopes('task') as TasksEnvelope[];
    expect(packs.flatMap((p) => p.tasks.map((t) => t.index))).toEqual([0, 1, 2]);
    expect(packs.every((p) => p.resumed === true)).toBe(true);
  });

  it('with a window, a fan-out resumed before its first release sends the window as new', async () => {
    const fake = fakeEngine({
      jobs: [fanJob()],
      batching: { chunkSize: 10, window: 3, packTasks: 10 },
    });
    const { jobId, run } = await started(fake, range(6));
    await fake.store.insertTasks(
      jobId,
      0,
      range(6).map((index) => ({ index, input: index })),
    );
    await run();
    const packs = fake.transport.envelopes('task') as TasksEnvelope[];
    expect(packs.flatMap((p) => p.tasks.map((t) => t.index))).toEqual([0, 1, 2]);
    expect(packs.some((p) => p.resumed === true)).toBe(false);
  });

  it('advances at once when a stage fans out to nothing', async () => {
    const fake = fakeEngine({ jobs: [fanJob()] });
    const { jobId, run } = await started(fake, []);
    await run();
    expect(fake.transport.sent.task).toEqual([]);
    expect((await fake.store.getStages(jobId))[0]).toMatchObject({ status: 'complete', total: 0 });
    expect(fake.transport.stageMessages(jobId)).toEqual([1]);
  });

  it('stops a cancelled job’s fan-out without sealing the stage', async () => {
    let fake!: FakeEngine;
    let jobId = '';
    const spec: StageSpec = {
      fanOut: async function* () {
        for (let i = 0; i < 1000; i++) {
          if (i === 5) await fake.store.cancelJob(jobId);
          yield i;
        }
      },
    };
    fake = fakeEngine({ jobs: [fanJob(spec)], batching: { chunkSize: 1 } });
    const s = await started(fake, []);
    jobId = s.jobId;
    await s.run();
    const [stage] = await fake.store.getStages(jobId);
    expect(stage!.status).toBe('fanning_out');
    expect(stage!.created).toBeLessThan(1000);
  });

  it('refuses an input JSON cannot carry (NOT_SERIALIZABLE)', async () => {
    const fake = fakeEngine({ jobs: [fanJob({ fanOut: () => [1, 2n] })] });
    const { run } = await started(fake, []);
    const err = await run().catch((e: unknown) => e);
    expect(isSwitchyardError(err) && err.code).toBe('NOT_SERIALIZABLE');
  });

  it('counts a results() of an unknown stage read by fanOut as the user code’s failure', async () => {
    const spec: StageSpec = {
      fanOut: async function* (_: Inputs, ctx) {
        for await (const r of ctx.results('nope')) yield r;
      },
    };
    const fake = fakeEngine({ jobs: [fanJob(spec)] });
    const { run } = await started(fake, []);
    const err = await run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserCodeError);
  });
});

describe('userChunks', () => {
  const collect = async (source: () => unknown, size: number) => {
    const chunks: unknown[][] = [];
    for await (const c of userChunks(source as never, size)) chunks.push(c);
    return chunks;
  };

  it('chunks arrays, iterables and async iterables alike', async () => {
    const expected = [
      [0, 1, 2],
      [3, 4],
    ];
    expect(await collect(() => range(5), 3)).toEqual(expected);
    expect(await collect(() => new Set(range(5)), 3)).toEqual(expected);
    expect(
      await collect(
        async () =>
          (async function* () {
            yield* range(5);
          })(),
        3,
      ),
    ).toEqual(expected);
    expect(await collect(() => [], 3)).toEqual([]);
  });

  it('marks what user code throws — calling fanOut or pulling an item — as UserCodeError', async () => {
    const cause = new Error('user bug');
    const thrown = await collect(() => {
      throw cause;
    }, 3).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(UserCodeError);
    expect((thrown as UserCodeError).cause).toBe(cause);
    const midway = await collect(
      () =>
        (function* () {
          yield 1;
          throw cause;
        })(),
      3,
    ).catch((e: unknown) => e);
    expect(midway).toBeInstanceOf(UserCodeError);
  });
});
