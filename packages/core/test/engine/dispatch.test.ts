import { describe, expect, it } from 'vitest';
import { taskMessages } from '../../src/engine/outbox.js';
import { submit } from '../../src/engine/submit.js';
import { TaskSlots } from '../../src/engine/worker/slots.js';
import { encodeEnvelope } from '../../src/envelope.js';
import { ValidationError } from '../../src/errors.js';
import {
  doubleJob,
  fakeEngine,
  inbound,
  runningJob,
  taskEnvelope,
  testJob,
} from './fake-context.js';

describe('Dispatcher', () => {
  it.each([
    ['not JSON', 'not json {'],
    ['an unknown version', JSON.stringify({ v: 9, kind: 'stage', jobId: 'j', stage: 0 })],
    ['a number', 42],
    ['an id with U+0000', JSON.stringify({ v: 1, kind: 'stage', jobId: 'x\u0000y', stage: 0 })],
    [
      'a task envelope whose task id names another job',
      JSON.stringify({ v: 1, kind: 'task', jobId: 'j', stage: 0, taskId: 'other.0.7' }),
    ],
    [
      'a task envelope whose task id names another stage',
      JSON.stringify({ v: 1, kind: 'task', jobId: 'j', stage: 1, taskId: 'j.0.8' }),
    ],
    [
      'a count beyond any store’s integer',
      JSON.stringify({
        v: 1,
        kind: 'task',
        jobId: 'j',
        stage: 0,
        taskId: 'j.0.1',
        attempts: 1e300,
      }),
    ],
    [
      'a pack index beyond any store’s integer',
      JSON.stringify({ v: 1, kind: 'tasks', jobId: 'j', stage: 0, tasks: [{ index: 2 ** 53 }] }),
    ],
  ])('dead-letters a body that is %s as MalformedMessage', async (_, body) => {
    const fake = fakeEngine();
    const settlement = await fake.modules.dispatcher.process(inbound(body), fake.group);
    expect(settlement).toMatchObject({ action: 'deadLetter', reason: 'MalformedMessage' });
    expect(fake.logger.lines.some((l) => l.level === 'warn')).toBe(true);
  });

  it('routes a stage message to the stage runner: the job starts and fans out', async () => {
    const fake = fakeEngine();
    const { jobId } = await submit(fake.ctx, { jobName: 'double', params: { inputs: [1, 2] } });
    const body = fake.transport.sent.stage[0]!.body;
    expect(await fake.modules.dispatcher.process(inbound(body), fake.group)).toEqual({
      action: 'complete',
    });
    expect((await fake.store.getJob(jobId))!.status).toBe('running');
    expect(fake.transport.sent.task).toHaveLength(2);
  });

  it('routes a task message to the task runner and strips the engine’s notes from a retry', async () => {
    const job = testJob({
      name: 'flaky',
      stages: [
        {
          handler: () => {
            throw new Error('x');
          },
        },
      ],
    });
    const fake = fakeEngine({ jobs: [job] });
    const jobId = await runningJob(fake, job, [1]);
    const body = encodeEnvelope(taskEnvelope(fake, { jobId, stage: 0, index: 0, input: 1 }));
    const settlement = await fake.modules.dispatcher.process(inbound(body), fake.group);
    expect(settlement).toMatchObject({ action: 'retry', reason: 'x' });
    expect(Object.keys(settlement).sort()).toEqual(['action', 'delayMs', 'reason']);
  });

  it('routes a pack to the pack runner, telling the message’s hold how many tasks it carries', async () => {
    const fake = fakeEngine({ jobs: [doubleJob], batching: { packTasks: 10 } });
    const jobId = await runningJob(fake, doubleJob, [1, 2, 3]);
    const [pack] = taskMessages({ target: fake.target, jobId, stage: 0, resumed: false }, [
      { index: 0, input: 1 },
      { index: 1, input: 2 },
      { index: 2, input: 3 },
    ]);
    const slots = new TaskSlots({
      capacity: 10,
      expectedPerMessage: 1,
      prefetch: 0,
      freed: () => {},
    });
    const held = slots.received();
    const processing = fake.modules.dispatcher.process(
      { ...inbound(pack!.body), held },
      fake.group,
    );
    // Counted before anything is awaited: 3 tasks held, 7 free.
    expect(slots.wanted(0)).toBe(7);
    expect(await processing).toEqual({ action: 'complete' });
    held.ended();
    expect((await fake.store.getTask(`${jobId}.0.2`))!.result).toBe(6);
  });

  it('dead-letters a message whose values the store refuses, instead of releasing it without end', async () => {
    const fake = fakeEngine();
    const jobId = await runningJob(fake, doubleJob, [1]);
    const body = encodeEnvelope(taskEnvelope(fake, { jobId, stage: 0, index: 0, input: 1 }));
    fake.store.getJob = async () => {
      throw new ValidationError('query: a value is out of the range PostgreSQL stores', [
        { path: '', message: 'out of range' },
      ]);
    };
    const settlement = await fake.modules.dispatcher.process(inbound(body, 1), fake.group);
    expect(settlement).toEqual({
      action: 'deadLetter',
      reason: 'InvalidMessage',
      description: 'query: a value is out of the range PostgreSQL stores',
    });
    expect(fake.logger.lines.some((l) => l.level === 'error')).toBe(false);
  });

  it('releases the message with backoff when the store fails under it', async () => {
    const fake = fakeEngine({ retry: { initialDelayMs: 100, jitter: 0 } });
    const jobId = await runningJob(fake, doubleJob, [1]);
    const body = encodeEnvelope(taskEnvelope(fake, { jobId, stage: 0, index: 0, input: 1 }));
    await fake.store.close();
    const settlement = await fake.modules.dispatcher.process(inbound(body, 3), fake.group);
    expect(settlement).toEqual({ action: 'retry', delayMs: 400, reason: 'memory store is closed' });
    expect(fake.logger.lines.some((l) => l.level === 'error' && l.fields?.jobId === jobId)).toBe(
      true,
    );
  });
});
