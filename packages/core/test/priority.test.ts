import {
  defineJob,
  defineTask,
  isSwitchyardError,
  memoryTransport,
  stage,
  type TaskDefinition,
} from '@switchyard/core';
import type { OutgoingMessage, QueueKind, Transport } from '@switchyard/core/driver';
import { afterEach, describe, expect, it } from 'vitest';
import { startYards } from './harness.js';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

function oneStage(name: string, task: TaskDefinition<{ i: number }, unknown>, n: number) {
  return defineJob({
    name,
    stages: [
      stage({ name: 'only', task, fanOut: () => Array.from({ length: n }, (_, i) => ({ i })) }),
    ],
  });
}

const slow = defineTask({
  name: 'slow',
  handler: async ({ i }: { i: number }) => {
    await new Promise((r) => setTimeout(r, 2));
    return i;
  },
});
const quick = defineTask({ name: 'quick', handler: ({ i }: { i: number }) => i });

/** A memory transport that records the lane of every task message sent. */
function recordingTransport(): { transport: Transport; lanes: Map<string, string[]> } {
  const transport = memoryTransport({ visibilityTimeoutMs: 500 });
  const lanes = new Map<string, string[]>();
  const send = transport.send.bind(transport);
  transport.send = (queue: QueueKind, messages: readonly OutgoingMessage[]) => {
    if (queue === 'task')
      for (const m of messages) {
        const jobId = String((JSON.parse(m.body) as { jobId: string }).jobId);
        lanes.set(jobId, [...(lanes.get(jobId) ?? []), m.priority ?? 'normal']);
      }
    return send(queue, messages);
  };
  return { transport, lanes };
}

describe('engine: priorities', () => {
  it('runs a high-priority job ahead of a queued big job, and a normal one behind it', async () => {
    const h = startYards(
      [oneStage('big', slow, 3000), oneStage('urgent', quick, 3), oneStage('routine', quick, 3)],
      // Unwindowed: the whole big job is in the queue before the small ones, first in, first out
      // within a lane (jobs taking turns is the next test's).
      {
        workers: 1,
        concurrency: 8,
        batching: { window: false },
        transports: [memoryTransport({ visibilityTimeoutMs: 500, fairness: false })],
      },
    );
    cleanup = h.stop;
    const big = await h.yard.submit('big', undefined);
    while (!(await h.yard.getJob(big.jobId))?.stages[0]?.sealed)
      await new Promise((r) => setTimeout(r, 5));
    const routine = await h.yard.submit('routine', undefined);
    const urgent = await h.yard.submit('urgent', undefined, { priority: 'high' });
    const done = await h.yard.waitFor(urgent.jobId, { pollIntervalMs: 10 });
    expect(done).toMatchObject({ status: 'succeeded', priority: 'high' });
    // The big job has most of its tasks left; the normal job submitted first waits behind them.
    expect((await h.yard.getJob(big.jobId))?.stages[0]?.succeeded).toBeLessThan(2000);
    expect((await h.yard.getJob(routine.jobId))?.status).toBe('running');
    expect((await h.yard.waitFor(big.jobId, { pollIntervalMs: 20 })).status).toBe('succeeded');
    expect((await h.yard.waitFor(routine.jobId, { pollIntervalMs: 20 })).status).toBe('succeeded');
  });

  it('runs a normal job queued behind a big one in turn with it where the transport has fairness', async () => {
    const h = startYards([oneStage('big', slow, 3000), oneStage('routine', quick, 3)], {
      workers: 1,
      concurrency: 8,
      batching: { window: false },
    });
    cleanup = h.stop;
    const big = await h.yard.submit('big', undefined);
    while (!(await h.yard.getJob(big.jobId))?.stages[0]?.sealed)
      await new Promise((r) => setTimeout(r, 5));
    const routine = await h.yard.submit('routine', undefined);
    expect((await h.yard.waitFor(routine.jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    // Its three tasks took three of the big job's turns, not a place behind its 3,000.
    expect((await h.yard.getJob(big.jobId))?.stages[0]?.succeeded).toBeLessThan(2000);
    expect((await h.yard.waitFor(big.jobId, { pollIntervalMs: 20 })).status).toBe('succeeded');
  });

  it('sends every task message of a job in its lane: fan-out, window releases, retries', async () => {
    const { transport, lanes } = recordingTransport();
    let failures = 0;
    const flaky = defineTask({
      name: 'flaky',
      retry: { maxAttempts: 3, initialDelayMs: 1 },
      handler: ({ i }: { i: number }) => {
        if (i % 5 === 0 && failures++ < 4) throw new Error('once more');
        return i;
      },
    });
    const h = startYards([oneStage('windowed', flaky, 40)], {
      transports: [transport],
      batching: { window: 8, packTasks: 4 },
    });
    cleanup = h.stop;
    const low = await h.yard.submit('windowed', undefined, { priority: 'low' });
    expect((await h.yard.waitFor(low.jobId, { pollIntervalMs: 10 })).status).toBe('succeeded');
    const sent = lanes.get(low.jobId) ?? [];
    expect(sent.length).toBeGreaterThan(40 / 8);
    expect(new Set(sent)).toEqual(new Set(['low']));
  });

  it('keeps the first submit’s priority on an idempotent resubmit, and lists it', async () => {
    const h = startYards([oneStage('urgent', quick, 1)]);
    cleanup = h.stop;
    const first = await h.yard.submit('urgent', undefined, { priority: 'low' });
    const again = await h.yard.submit('urgent', undefined, { priority: 'high' });
    expect(again).toMatchObject({ jobId: first.jobId, created: false });
    expect((await h.yard.getJob(first.jobId))?.priority).toBe('low');
    const { jobs } = await h.yard.listJobs({ name: 'urgent' });
    expect(jobs.map((j) => j.priority)).toEqual(['low']);
  });

  it('refuses a priority that is not high, normal or low, naming the field', async () => {
    const h = startYards([oneStage('urgent', quick, 1)]);
    cleanup = h.stop;
    const err = await h.yard
      .submit('urgent', undefined, { priority: 'urgent' as 'high' })
      .catch((e: unknown) => e);
    expect(isSwitchyardError(err) && err.code).toBe('INVALID_INPUT');
    expect(err).toMatchObject({ issues: [{ path: 'priority' }] });
    expect((await h.yard.listJobs({ name: 'urgent' })).jobs).toEqual([]);
  });
});
