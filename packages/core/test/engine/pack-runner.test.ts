import { describe, expect, it } from 'vitest';
import { taskMessages } from '../../src/engine/outbox.js';
import { decodeEnvelope, type TaskEnvelope, type TasksEnvelope } from '../../src/envelope.js';
import {
  engineModules,
  type FakeEngine,
  fakeEngine,
  inbound,
  runningJob,
  type StageSpec,
  testJob,
} from './fake-context.js';

async function packed(spec: StageSpec, inputs: unknown[], options: { resumed?: boolean } = {}) {
  const job = testJob({ name: 'packed', stages: [spec, {}] });
  const fake = fakeEngine({ jobs: [job], batching: { packTasks: 100 } });
  const jobId = await runningJob(fake, job, inputs);
  const [message] = taskMessages(
    { target: fake.target, jobId, stage: 0, resumed: options.resumed ?? false },
    inputs.map((input, index) => ({ index, input })),
  );
  const pack = decodeEnvelope(message!.body) as TasksEnvelope;
  return { fake, jobId, pack };
}

const runPack = (fake: FakeEngine, pack: TasksEnvelope, deliveryCount = 1) =>
  fake.modules.packs.run(pack, inbound(pack, deliveryCount), fake.group);

const statuses = async (fake: FakeEngine, jobId: string) =>
  (await fake.store.listTasks(jobId, { stage: 0 })).tasks.map((t) => t.status);

describe('PackRunner', () => {
  it('runs every task of a pack, settles it once, and advances the completed stage', async () => {
    const { fake, jobId, pack } = await packed({}, [1, 2, 3, 4]);
    expect(await runPack(fake, pack)).toEqual({ action: 'complete' });
    const tasks = (await fake.store.listTasks(jobId, { stage: 0 })).tasks;
    expect(tasks.map((t) => [t.status, t.result, t.attempts])).toEqual([
      ['succeeded', 2, 1],
      ['succeeded', 4, 1],
      ['succeeded', 6, 1],
      ['succeeded', 8, 1],
    ]);
    expect(fake.transport.stageMessages(jobId)).toEqual([1]);
    expect(fake.transport.sent.task).toEqual([]);
  });

  it('splits a task to retry out into a message of its own, delayed, counting its attempt', async () => {
    const { fake, jobId, pack } = await packed(
      {
        handler: (n) => {
          if (n === 3) throw new Error('three is bad');
          return n;
        },
        retry: { maxAttempts: 3, initialDelayMs: 1000, jitter: 0 },
      },
      [1, 2, 3, 4],
    );
    expect(await runPack(fake, pack)).toEqual({ action: 'complete' });
    expect(await statuses(fake, jobId)).toEqual(['succeeded', 'succeeded', 'pending', 'succeeded']);
    expect(fake.transport.sent.task).toHaveLength(1);
    const split = fake.transport.sent.task[0]!;
    expect(split).toMatchObject({ messageId: `${jobId}.0.2#1`, delayMs: 1000 });
    expect(decodeEnvelope(split.body)).toEqual({
      v: 1,
      kind: 'task',
      jobId,
      stage: 0,
      taskId: `${jobId}.0.2`,
      input: 3,
      attempts: 1,
    });
    expect(fake.transport.stageMessages(jobId)).toEqual([]);
  });

  it('splits a poisoned task out with a dead-letter note; that message is dead-lettered unrun', async () => {
    let calls = 0;
    const { fake, jobId, pack } = await packed({ numbers: true, handler: (n) => ++calls && n }, [
      1,
      'two',
      3,
    ]);
    expect(await runPack(fake, pack)).toEqual({ action: 'complete' });
    expect(await statuses(fake, jobId)).toEqual(['succeeded', 'failed', 'succeeded']);
    expect(calls).toBe(2);
    const split = decodeEnvelope(fake.transport.sent.task[0]!.body) as TaskEnvelope;
    expect(split.deadLetter).toMatchObject({ reason: 'InvalidInput' });
    const settled = await fake.modules.dispatcher.process(
      inbound(fake.transport.sent.task[0]!.body),
      fake.group,
    );
    expect(settled).toMatchObject({ action: 'deadLetter', reason: 'InvalidInput' });
    expect(calls).toBe(2);
    // The stage completed with one failure, which it does not tolerate.
    expect((await fake.store.getJob(jobId))!.status).toBe('failed');
  });

  it('acknowledges a late duplicate of a pack whose stage is complete, running nothing', async () => {
    let calls = 0;
    const { fake, jobId, pack } = await packed({ handler: () => ++calls }, [1, 2]);
    await runPack(fake, pack);
    expect(calls).toBe(2);
    fake.transport.clear();
    expect(await runPack(fake, pack)).toEqual({ action: 'complete' });
    expect(calls).toBe(2);
    // It re-checked the stage's advance, which a crash could have lost.
    expect(fake.transport.stageMessages(jobId)).toEqual([1]);
  });

  it('claims a redelivered or resumed pack task by task, skipping finished tasks', async () => {
    const ran: unknown[] = [];
    const { fake, jobId, pack } = await packed({ handler: (n) => ran.push(n) }, [1, 2, 3], {
      resumed: true,
    });
    expect(pack.resumed).toBe(true);
    await fake.store.completeTasks([
      { jobId, stage: 0, index: 1, taskId: `${jobId}.0.1`, status: 'succeeded', result: 'before' },
    ]);
    expect(await runPack(fake, pack)).toEqual({ action: 'complete' });
    expect(ran.sort()).toEqual([1, 3]);
    expect((await fake.store.getTask(`${jobId}.0.1`))!.result).toBe('before');
    const again = await packed({ handler: (n) => n }, [5, 6]);
    await runPack(again.fake, again.pack, 2);
    const tasks = (await again.fake.store.listTasks(again.jobId, { stage: 0 })).tasks;
    expect(tasks.map((t) => t.attempts)).toEqual([2, 2]);
  });

  it('reads a claim-checked task’s input from its row', async () => {
    const big = 'x'.repeat(2000);
    const job = testJob({ name: 'big', stages: [{ handler: (s) => (s as string).length }] });
    const fake = fakeEngine({
      jobs: [job],
      batching: { packTasks: 10 },
      limits: { maxMessageBytes: 500 },
    });
    const jobId = await runningJob(fake, job, ['small', big]);
    const [message] = taskMessages({ target: fake.target, jobId, stage: 0, resumed: false }, [
      { index: 0, input: 'small' },
      { index: 1, input: big },
    ]);
    const pack = decodeEnvelope(message!.body) as TasksEnvelope;
    expect(pack.tasks[1]).toEqual({ index: 1 });
    expect(await runPack(fake, pack)).toEqual({ action: 'complete' });
    expect((await fake.store.getTask(`${jobId}.0.1`))!.result).toBe(2000);
  });

  it('admits a fan-out’s pack task by task when the store cannot admit packs whole', async () => {
    const { fake, jobId, pack } = await packed({}, [1, 2, 3]);
    const store = Object.create(fake.store) as typeof fake.store;
    Object.defineProperty(store, 'admitPacks', { value: undefined });
    const modules = engineModules({ ...fake.ctx, store });
    expect(modules.barrier.admitsPacks).toBe(false);
    expect(await modules.packs.run(pack, inbound(pack), fake.group)).toEqual({
      action: 'complete',
    });
    const tasks = (await fake.store.listTasks(jobId, { stage: 0 })).tasks;
    expect(tasks.map((t) => [t.status, t.attempts])).toEqual([
      ['succeeded', 1],
      ['succeeded', 1],
      ['succeeded', 1],
    ]);
    expect(fake.transport.stageMessages(jobId)).toEqual([1]);
  });

  it('dead-letters a pack of a job that does not exist', async () => {
    const { fake, pack } = await packed({}, [1]);
    expect(await runPack(fake, { ...pack, jobId: 'gone' })).toMatchObject({
      action: 'deadLetter',
      reason: 'JobNotFound',
    });
  });
});
