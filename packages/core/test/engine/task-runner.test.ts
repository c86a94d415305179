import { describe, expect, it } from 'vitest';
import { claimRef } from '../../src/engine/barrier.js';
import type { TaskRun } from '../../src/engine/tasks/task-runner.js';
import { TaskSlots } from '../../src/engine/worker/slots.js';
import type { TaskEnvelope } from '../../src/envelope.js';
import {
  createJob,
  deferred,
  type FakeEngine,
  fakeEngine,
  inbound,
  runningJob,
  startStage,
  taskEnvelope,
  testJob,
} from './fake-context.js';

const retry = { maxAttempts: 3, initialDelayMs: 1000, factor: 2, maxDelayMs: 60_000, jitter: 0.5 };

function run(
  fake: FakeEngine,
  envelope: TaskEnvelope,
  deliveryCount = 1,
  maxDeliveries?: number,
): ReturnType<FakeEngine['modules']['tasks']['run']> {
  const task: TaskRun = {
    envelope,
    index: Number(envelope.taskId.split('.').pop()),
    message: inbound(envelope, deliveryCount, maxDeliveries),
    group: fake.group,
  };
  return fake.modules.tasks.run(task);
}

async function oneTask(
  fake: FakeEngine,
  job: Parameters<typeof runningJob>[1],
  input: unknown = 21,
) {
  const jobId = await runningJob(fake, job, [input, input]);
  return { jobId, envelope: taskEnvelope(fake, { jobId, stage: 0, index: 0, input }) };
}

describe('TaskRunner', () => {
  it('runs the handler and records its result', async () => {
    const job = testJob({ name: 'ok', stages: [{}] });
    const fake = fakeEngine({ jobs: [job] });
    const { jobId, envelope } = await oneTask(fake, job);
    expect(await run(fake, envelope)).toEqual({ action: 'complete' });
    expect(await fake.store.getTask(`${jobId}.0.0`)).toMatchObject({
      status: 'succeeded',
      result: 42,
      attempts: 1,
    });
  });

  it('hands the handler its context and reads a claim-checked input from the task row', async () => {
    const seen: unknown[] = [];
    const job = testJob({
      name: 'ctx',
      stages: [
        {
          handler: (input, ctx) =>
            seen.push({ input, ...ctx, logger: undefined, signal: undefined }),
        },
      ],
    });
    const fake = fakeEngine({ jobs: [job] });
    const jobId = await runningJob(fake, job, ['a', 'b']);
    const { input: _input, ...byReference } = taskEnvelope(fake, {
      jobId,
      stage: 0,
      index: 1,
      input: 'b',
    });
    expect(await run(fake, byReference, 2)).toEqual({ action: 'complete' });
    expect(seen).toEqual([
      {
        input: 'b',
        jobId,
        taskId: `${jobId}.0.1`,
        stage: 0,
        index: 1,
        attempt: 2,
        logger: undefined,
        signal: undefined,
      },
    ]);
  });

  it('retries a throwing handler with backoff, noting the attempt, then poisons it at maxAttempts', async () => {
    let calls = 0;
    const job = testJob({
      name: 'flaky',
      stages: [
        {
          handler: () => {
            calls++;
            throw new Error('boom');
          },
          retry,
        },
      ],
    });
    const fake = fakeEngine({ jobs: [job] });
    const { jobId, envelope } = await oneTask(fake, job);
    const first = await run(fake, envelope, 1);
    expect(first).toMatchObject({ action: 'retry', reason: 'boom', attempt: 1 });
    // initialDelayMs 1000, jitter 0.5: between 500 and 1000 ms.
    expect((first as { delayMs: number }).delayMs).toBeGreaterThanOrEqual(500);
    expect((first as { delayMs: number }).delayMs).toBeLessThanOrEqual(1000);
    expect(await fake.store.getTask(`${jobId}.0.0`)).toMatchObject({
      status: 'pending',
      attempts: 1,
      error: { message: 'boom' },
    });
    const second = await run(fake, envelope, 2);
    expect(second).toMatchObject({ action: 'retry', attempt: 2 });
    expect((second as { delayMs: number }).delayMs).toBeGreaterThanOrEqual(1000);
    const third = await run(fake, envelope, 3);
    expect(third).toMatchObject({ action: 'deadLetter', reason: 'MaxAttemptsExceeded' });
    expect((third as { description: string }).description).toContain('after 3 attempt(s): boom');
    expect(await fake.store.getTask(`${jobId}.0.0`)).toMatchObject({
      status: 'failed',
      attempts: 3,
    });
    expect(calls).toBe(3);
  });

  it('dead-letters a task once when a duplicate delivery fails its last attempt too', async () => {
    let secondStarted: () => void = () => {};
    const bothRunning = new Promise<void>((r) => {
      secondStarted = r;
    });
    let firstSettled: () => void = () => {};
    const firstDone = new Promise<void>((r) => {
      firstSettled = r;
    });
    let calls = 0;
    const job = testJob({
      name: 'twice',
      stages: [
        {
          handler: async () => {
            if (++calls === 1) await bothRunning;
            else {
              secondStarted();
              await firstDone;
            }
            throw new Error('boom');
          },
          retry: { ...retry, maxAttempts: 1 },
        },
      ],
    });
    const fake = fakeEngine({ jobs: [job] });
    const { jobId, envelope } = await oneTask(fake, job);
    // A duplicate delivered while the first runs (a lock lost, a re-drive): both run and fail; the
    // first poisons the task, the duplicate's failure finds it failed already.
    const first = run(fake, envelope, 1).finally(firstSettled);
    const second = run(fake, envelope, 2);
    expect(await first).toMatchObject({ action: 'deadLetter', reason: 'MaxAttemptsExceeded' });
    expect(await second).toEqual({ action: 'complete' });
    expect(calls).toBe(2);
    expect(await fake.store.getTask(`${jobId}.0.0`)).toMatchObject({ status: 'failed' });
  });

  it('poisons on the host’s last delivery rather than retrying (MaxDeliveriesExceeded)', async () => {
    const job = testJob({
      name: 'last',
      stages: [
        {
          handler: () => {
            throw new Error('nope');
          },
          retry: { ...retry, maxAttempts: 10 },
        },
      ],
    });
    const fake = fakeEngine({ jobs: [job] });
    const { jobId, envelope } = await oneTask(fake, job);
    expect(await run(fake, envelope, 1, 2)).toMatchObject({ action: 'retry' });
    expect(await run(fake, envelope, 2, 2)).toMatchObject({
      action: 'deadLetter',
      reason: 'MaxDeliveriesExceeded',
    });
    expect((await fake.store.getTask(`${jobId}.0.0`))!.status).toBe('failed');
  });

  it('dead-letters an input its schema rejects (InvalidInput) without running the handler', async () => {
    let calls = 0;
    const job = testJob({ name: 'typed', stages: [{ numbers: true, handler: () => calls++ }] });
    const fake = fakeEngine({ jobs: [job] });
    const { jobId, envelope } = await oneTask(fake, job, 'not a number');
    expect(await run(fake, envelope)).toMatchObject({
      action: 'deadLetter',
      reason: 'InvalidInput',
    });
    expect(calls).toBe(0);
    expect(await fake.store.getTask(`${jobId}.0.0`)).toMatchObject({
      status: 'failed',
      error: { code: 'INVALID_INPUT' },
    });
  });

  it('dead-letters a task whose job this worker does not define (UnknownTask)', async () => {
    const fake = fakeEngine();
    const jobId = await createJob(fake, { name: 'elsewhere', stageCount: 1 });
    await startStage(fake, { jobId, stage: 0, inputs: [1] });
    const envelope = taskEnvelope(fake, { jobId, stage: 0, index: 0, input: 1 });
    expect(await run(fake, envelope)).toMatchObject({
      action: 'deadLetter',
      reason: 'UnknownTask',
    });
    expect(await fake.store.getTask(`${jobId}.0.0`)).toMatchObject({
      status: 'failed',
      error: { code: 'UNKNOWN_JOB' },
    });
  });

  it('aborts ctx.signal with TASK_TIMEOUT when the handler outlives timeoutMs', async () => {
    let reason: unknown;
    const job = testJob({
      name: 'slow',
      stages: [
        {
          timeoutMs: 30,
          retry: { maxAttempts: 1 },
          handler: (_, ctx) =>
            new Promise((resolve) =>
              ctx.signal.addEventListener('abort', () => {
                reason = ctx.signal.reason;
                resolve('too late');
              }),
            ),
        },
      ],
    });
    const fake = fakeEngine({ jobs: [job] });
    const { jobId, envelope } = await oneTask(fake, job);
    expect(await run(fake, envelope)).toMatchObject({
      action: 'deadLetter',
      reason: 'MaxAttemptsExceeded',
    });
    expect(reason).toMatchObject({ code: 'TASK_TIMEOUT', name: 'TaskTimeoutError' });
    expect(await fake.store.getTask(`${jobId}.0.0`)).toMatchObject({
      status: 'failed',
      timeouts: 1,
      error: { code: 'TASK_TIMEOUT' },
    });
  });

  it('poisons at once a task whose result JSON cannot carry (NotSerializable)', async () => {
    const job = testJob({ name: 'bigint', stages: [{ handler: () => 1n }] });
    const fake = fakeEngine({ jobs: [job] });
    const { jobId, envelope } = await oneTask(fake, job);
    expect(await run(fake, envelope)).toMatchObject({
      action: 'deadLetter',
      reason: 'NotSerializable',
    });
    expect(await fake.store.getTask(`${jobId}.0.0`)).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: { code: 'NOT_SERIALIZABLE' },
    });
  });

  it('acknowledges a duplicate of a finished task without running it, re-checking the advance', async () => {
    let calls = 0;
    const job = testJob({ name: 'dup', stages: [{ handler: () => ++calls }, {}] });
    const fake = fakeEngine({ jobs: [job] });
    const jobId = await runningJob(fake, job, [1]);
    const envelope = taskEnvelope(fake, { jobId, stage: 0, index: 0, input: 1 });
    expect(await run(fake, envelope)).toEqual({ action: 'complete' });
    expect(fake.transport.stageMessages(jobId)).toEqual([1]);
    expect(await run(fake, envelope, 2)).toEqual({ action: 'complete' });
    expect(calls).toBe(1);
    // The recheck found the stage complete and the job still in it: the advance is sent again.
    expect(fake.transport.stageMessages(jobId)).toEqual([1, 1]);
  });

  it('dead-letters a message for a task or job that does not exist', async () => {
    const fake = fakeEngine();
    const jobId = await runningJob(fake, fake.ctx.settings.jobs.get('double')!, [1]);
    expect(
      await run(fake, taskEnvelope(fake, { jobId, stage: 0, index: 7, input: 1 })),
    ).toMatchObject({
      action: 'deadLetter',
      reason: 'TaskNotFound',
    });
    expect(
      await run(fake, taskEnvelope(fake, { jobId: 'gone', stage: 0, index: 0, input: 1 })),
    ).toMatchObject({ action: 'deadLetter', reason: 'JobNotFound' });
  });

  it('acknowledges a task of a cancelled job without running it', async () => {
    let calls = 0;
    const job = testJob({ name: 'cancel', stages: [{ handler: () => ++calls }] });
    const fake = fakeEngine({ jobs: [job] });
    const { jobId, envelope } = await oneTask(fake, job);
    await fake.store.cancelJob(jobId);
    expect(await run(fake, envelope)).toEqual({ action: 'complete' });
    expect(calls).toBe(0);
  });

  it('settles an attempt its job’s cancel aborted as done: neither retried nor dead-lettered', async () => {
    let reason: unknown;
    const started = deferred();
    const job = testJob({
      name: 'aborted',
      stages: [
        {
          retry: { maxAttempts: 1 },
          handler: (_, ctx) =>
            new Promise((_, reject) => {
              started.resolve();
              ctx.signal.addEventListener('abort', () => {
                reason = ctx.signal.reason;
                reject(ctx.signal.reason);
              });
            }),
        },
      ],
    });
    const fake = fakeEngine({ jobs: [job] });
    const { jobId, envelope } = await oneTask(fake, job);
    const settled = run(fake, envelope);
    await started.promise;
    await fake.store.cancelJob(jobId);
    // What a worker's watch does on the store's notice (or its next check).
    await fake.ctx.cancels.abort(jobId);
    expect(await settled).toEqual({ action: 'complete' });
    expect(reason).toMatchObject({ code: 'JOB_CANCELLED' });
    expect(await fake.store.getTask(`${jobId}.0.0`)).toMatchObject({ status: 'cancelled' });
    expect(await fake.store.getTask(`${jobId}.0.0`)).not.toHaveProperty('error');
    await fake.ctx.cancels.close();
  });

  it('settles as done a last attempt that failed after its job was cancelled, unread signal or not', async () => {
    const gate = deferred();
    const started = deferred();
    const job = testJob({
      name: 'late-fail',
      stages: [
        {
          retry: { maxAttempts: 1 },
          handler: async () => {
            started.resolve();
            await gate.promise;
            throw new Error('broke after the cancel');
          },
        },
      ],
    });
    const fake = fakeEngine({ jobs: [job] });
    const { jobId, envelope } = await oneTask(fake, job);
    const settled = run(fake, envelope, 2);
    await started.promise;
    await fake.store.cancelJob(jobId);
    gate.resolve();
    expect(await settled).toEqual({ action: 'complete' });
    expect(await fake.store.getTask(`${jobId}.0.0`)).toMatchObject({ status: 'cancelled' });
  });

  it('settles a task split out of a pack to be dead-lettered as noted, without running it', async () => {
    let calls = 0;
    const job = testJob({ name: 'noted', stages: [{ handler: () => ++calls }] });
    const fake = fakeEngine({ jobs: [job] });
    const { jobId, envelope } = await oneTask(fake, job);
    // The pack recorded the failure before it split the task out.
    await fake.store.completeTasks([
      {
        jobId,
        stage: 0,
        index: 0,
        taskId: envelope.taskId,
        status: 'failed',
        error: { name: 'ValidationError', message: 'bad' },
      },
    ]);
    const noted = { ...envelope, deadLetter: { reason: 'InvalidInput', description: 'bad' } };
    expect(await run(fake, noted)).toEqual({
      action: 'deadLetter',
      reason: 'InvalidInput',
      description: 'bad',
    });
    expect(calls).toBe(0);
  });

  it('releases a task unstarted when the worker stops while it waits for a slot', async () => {
    const job = testJob({ name: 'wait', stages: [{}] });
    const fake = fakeEngine({ jobs: [job] });
    const { jobId, envelope } = await oneTask(fake, job);
    // One slot, taken: the task waits for it.
    const slots = new TaskSlots({
      capacity: 1,
      expectedPerMessage: 1,
      prefetch: 0,
      freed: () => {},
    });
    expect(slots.enter()).toBeUndefined();
    const pending = fake.modules.tasks.run({
      envelope,
      index: 0,
      message: { ...inbound(envelope, 2), held: slots.received() },
      group: fake.group,
    });
    await new Promise((r) => setTimeout(r, 10));
    fake.shutdown.abort();
    slots.leave();
    expect(await pending).toMatchObject({ action: 'retry', delayMs: 0, attempt: 1 });
    // It gave the slot back.
    expect(slots.enter()).toBeUndefined();
    expect((await fake.store.getTask(`${jobId}.0.0`))!.status).toBe('running');
  });
});

describe('claimRef', () => {
  const envelope: TaskEnvelope = {
    v: 1,
    kind: 'task',
    jobId: 'j',
    stage: 0,
    taskId: 'j.0.3',
    input: 1,
  };

  it('admits the first delivery of a fan-out’s own message and claims every other', () => {
    expect(claimRef(envelope, 3, inbound(envelope, 1))).toMatchObject({
      admitOnly: true,
      minAttempt: 1,
      withInput: false,
      index: 3,
    });
    expect(claimRef(envelope, 3, inbound(envelope, 2))).toMatchObject({
      admitOnly: false,
      minAttempt: 2,
    });
    const redrive = { ...envelope, attempts: 2 };
    expect(claimRef(redrive, 3, inbound(redrive, 1))).toMatchObject({
      admitOnly: false,
      minAttempt: 3,
    });
    const { input: _input, ...byReference } = envelope;
    expect(claimRef(byReference, 3, inbound(byReference, 1)).withInput).toBe(true);
  });

  it('dead-letters a split-out note for a failed task, and runs it once a replay re-opened the task', async () => {
    const job = testJob({ name: 'noted', stages: [{}] });
    const fake = fakeEngine({ jobs: [job] });
    const { jobId, envelope } = await oneTask(fake, job);
    await fake.store.completeTasks([
      {
        jobId,
        stage: 0,
        index: 0,
        taskId: envelope.taskId,
        status: 'failed',
        error: { name: 'Error', message: 'boom' },
      },
    ]);
    const noted: TaskEnvelope = {
      ...envelope,
      attempts: 3,
      deadLetter: { reason: 'MaxAttemptsExceeded', description: 'boom' },
    };
    expect(await run(fake, noted)).toEqual({
      action: 'deadLetter',
      reason: 'MaxAttemptsExceeded',
      description: 'boom',
    });
    await fake.store.reopenTasks({ jobId, stage: 0, taskIds: [envelope.taskId] });
    expect(await run(fake, noted)).toEqual({ action: 'complete' });
    expect((await fake.store.getTask(envelope.taskId))?.status).toBe('succeeded');
  });
});
