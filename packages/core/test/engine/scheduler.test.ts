import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { resolveSchedules, Scheduler } from '../../src/engine/schedules/scheduler.js';
import type { ScheduleDefinition } from '../../src/engine/schedules/types.js';
import { submit } from '../../src/engine/submit.js';
import { createSwitchyard } from '../../src/engine/switchyard.js';
import type { SubmitOptions } from '../../src/engine/types.js';
import { silentLogger } from '../../src/logger.js';
import { memoryStore } from '../../src/memory/memory-store.js';
import { memoryTransport } from '../../src/memory/memory-transport.js';
import { fakeEngine, testJob } from './fake-context.js';

const job = testJob({ name: 'report', stages: [{}] });
const at = (iso: string) => new Date(iso);

function scheduler(
  schedules: ScheduleDefinition[],
  options: { instances?: number; graceMs?: number } = {},
) {
  const fake = fakeEngine({ jobs: [job] });
  const { entries, settings } = resolveSchedules(
    schedules,
    { graceMs: options.graceMs ?? 60_000, leaseMs: 60_000 },
    new Set(['report']),
  );
  const submitted: { params: unknown; options: SubmitOptions }[] = [];
  const instances = Array.from(
    { length: options.instances ?? 1 },
    (_, i) =>
      new Scheduler(fake.ctx, {
        entries,
        settings,
        submit: (request) => {
          submitted.push({ params: request.params, options: request.options ?? {} });
          return submit(fake.ctx, request);
        },
        instanceId: `instance-${i}`,
      }),
  );
  return { fake, instances, sched: instances[0]!, submitted };
}

const hourly: ScheduleDefinition = {
  name: 'hourly',
  job: 'report',
  cron: '0 * * * *',
  params: (fireAt: Date) => ({ inputs: [fireAt.getUTCHours()] }),
};

describe('Scheduler', () => {
  it('starts a new schedule at its first pass, then submits each fire once, keyed by its time', async () => {
    const { sched, fake } = scheduler([hourly]);
    expect((await sched.pass(at('2026-01-01T00:30:00Z'))).fired).toEqual([]);
    const first = await sched.pass(at('2026-01-01T01:00:05Z'));
    expect(first.fired).toHaveLength(1);
    expect(first.fired[0]).toMatchObject({ schedule: 'hourly', created: true });
    expect(first.fired[0]!.fireAt.toISOString()).toBe('2026-01-01T01:00:00.000Z');
    const jobRecord = await fake.store.getJob(first.fired[0]!.jobId);
    expect(jobRecord).toMatchObject({
      name: 'report',
      params: { inputs: [1] },
      idempotencyKey: 'schedule:hourly:2026-01-01T01:00:00.000Z',
    });
    expect((await sched.pass(at('2026-01-01T01:30:00Z'))).fired).toEqual([]);
    const [view] = await sched.list(at('2026-01-01T01:30:00Z'));
    expect(view).toMatchObject({
      name: 'hourly',
      paused: false,
      lastFireAt: at('2026-01-01T01:00:00Z'),
      lastJobId: first.fired[0]!.jobId,
      nextFireAt: at('2026-01-01T02:00:00Z'),
      timezone: 'UTC',
    });
  });

  it('admits one instance at a time: the lease holder fires, the others do nothing', async () => {
    const { instances, sched } = scheduler([hourly], { instances: 3 });
    await sched.pass(at('2026-01-01T00:30:00Z'));
    const passes = await Promise.all(instances.map((s) => s.pass(at('2026-01-01T01:00:01Z'))));
    expect(passes.filter((p) => p.ran)).toHaveLength(1);
    expect(passes.flatMap((p) => p.fired)).toHaveLength(1);
  });

  it('a pass that crashes between submitting a fire and moving the cursor never doubles it', async () => {
    const { sched, fake } = scheduler([hourly]);
    await sched.pass(at('2026-01-01T00:30:00Z'));
    const advance = fake.store.advanceSchedule.bind(fake.store);
    let crashes = 0;
    fake.store.advanceSchedule = async (a) => {
      if (a.lastJobId && crashes++ === 0) throw new Error('crash before the cursor moved');
      return advance(a);
    };
    const crashed = await sched.pass(at('2026-01-01T01:00:01Z'));
    expect(crashed.fired).toEqual([]);
    const again = await sched.pass(at('2026-01-01T01:00:02Z'));
    expect(again.fired).toHaveLength(1);
    expect(again.fired[0]!.created).toBe(false);
    const metrics = await fake.store.metrics();
    expect(metrics[0]?.jobs.total).toBe(1);
  });

  it("overlap 'skip': a fire submitted by a pass that died before moving the cursor is re-submitted, not skipped", async () => {
    const { sched, fake } = scheduler([{ ...hourly, overlap: 'skip' }]);
    await sched.pass(at('2026-01-01T00:30:00Z'));
    const first = await sched.pass(at('2026-01-01T01:00:01Z'));
    expect(first.fired).toHaveLength(1);
    // A pass found 01:00's job finished, submitted the 02:00 fire and died before moving the
    // cursor; 01:00's job was then retried (running again). The 02:00 fire was decided already.
    const advance = fake.store.advanceSchedule.bind(fake.store);
    fake.store.advanceSchedule = async (a) => {
      if (a.lastJobId) throw new Error('crash before the cursor moved');
      return advance(a);
    };
    const fireJob = await submit(fake.ctx, {
      jobName: 'report',
      params: { inputs: [2] },
      options: {
        idempotencyKey: 'schedule:hourly:2026-01-01T02:00:00.000Z',
      },
    });
    fake.store.advanceSchedule = advance;
    const again = await sched.pass(at('2026-01-01T02:00:02Z'));
    expect(again.skipped).toBe(0);
    expect(again.fired).toEqual([
      expect.objectContaining({ jobId: fireJob.jobId, created: false }),
    ]);
    expect((await sched.list(at('2026-01-01T02:00:02Z')))[0]?.lastJobId).toBe(fireJob.jobId);
  });

  it('skipped fires still move the cursor when a pass reaches its fire limit', async () => {
    const minutely: ScheduleDefinition = { ...hourly, cron: '* * * * *', catchUp: 'all' };
    const { sched } = scheduler([minutely]);
    await sched.pass(at('2026-01-01T00:00:00Z'));
    await sched.setPaused('hourly', true);
    // 180 fires due while paused: more than one pass takes (100).
    let skipped = 0;
    for (let i = 0; i < 3; i++) skipped += (await sched.pass(at('2026-01-01T03:00:00Z'))).skipped;
    expect(skipped).toBe(180);
    await sched.setPaused('hourly', false);
    const resumed = await sched.pass(at('2026-01-01T03:01:00Z'));
    expect(resumed.fired.map((f) => f.fireAt)).toEqual([at('2026-01-01T03:01:00Z')]);
  });

  it('catch-up after downtime follows the policy', async () => {
    for (const [catchUp, expected] of [
      ['none', 0],
      ['latest', 1],
      ['all', 5],
    ] as const) {
      const { sched } = scheduler([{ ...hourly, catchUp }], { graceMs: 60_000 });
      await sched.pass(at('2026-01-01T00:30:00Z'));
      const after = await sched.pass(at('2026-01-01T05:30:00Z'));
      expect(after.fired, catchUp).toHaveLength(expected);
    }
  });

  it("overlap 'skip' skips a fire while the previous fire's job is not finished", async () => {
    const { sched, fake } = scheduler([{ ...hourly, overlap: 'skip' }]);
    await sched.pass(at('2026-01-01T00:30:00Z'));
    const first = await sched.pass(at('2026-01-01T01:00:01Z'));
    expect(first.fired).toHaveLength(1);
    const second = await sched.pass(at('2026-01-01T02:00:01Z'));
    expect(second.fired).toEqual([]);
    expect(second.skipped).toBe(1);
    await fake.store.cancelJob(first.fired[0]!.jobId);
    expect((await sched.pass(at('2026-01-01T03:00:01Z'))).fired).toHaveLength(1);
  });

  it('pause skips fires (not queued up for resume), trigger submits now', async () => {
    const { sched } = scheduler([hourly]);
    await sched.pass(at('2026-01-01T00:30:00Z'));
    await sched.setPaused('hourly', true);
    expect((await sched.list())[0]).toMatchObject({ paused: true });
    expect((await sched.list())[0]?.nextFireAt).toBeUndefined();
    const paused = await sched.pass(at('2026-01-01T02:00:01Z'));
    expect(paused.fired).toEqual([]);
    expect(paused.skipped).toBe(2);
    await sched.setPaused('hourly', false);
    expect((await sched.pass(at('2026-01-01T02:30:00Z'))).fired).toEqual([]);
    const triggered = await sched.trigger('hourly', at('2026-01-01T02:31:00Z'));
    expect(triggered.created).toBe(true);
    await expect(sched.setPaused('nope', true)).rejects.toMatchObject({ code: 'UNKNOWN_SCHEDULE' });
  });

  it('releases delayed jobs when due and expires deadlines in its pass', async () => {
    const { sched, fake } = scheduler([]);
    const delayed = await submit(fake.ctx, {
      jobName: 'report',
      params: { inputs: [1] },
      options: { delayMs: 150 },
    });
    expect(delayed.status).toBe('scheduled');
    const late = await submit(fake.ctx, {
      jobName: 'report',
      params: { inputs: [2] },
      options: { deadlineMs: 100 },
    });
    expect((await sched.pass()).released).toBe(0);
    expect(fake.transport.sent.stage.length).toBe(1);
    await sleep(200);
    const pass = await sched.pass();
    expect(pass).toMatchObject({ released: 1, expired: 1 });
    expect(fake.transport.sent.stage.length).toBe(2);
    expect((await fake.store.getJob(delayed.jobId))?.status).toBe('queued');
    expect(await fake.store.getJob(late.jobId)).toMatchObject({
      status: 'cancelled',
      error: { code: 'DEADLINE_EXCEEDED' },
    });
  });

  it('refuses invalid schedules naming the field', () => {
    const jobs = new Set(['report']);
    expect(() => resolveSchedules([{ ...hourly, job: 'nope' }], {}, jobs)).toThrow(
      /schedules\[0\]\.job/,
    );
    expect(() => resolveSchedules([hourly, hourly], {}, jobs)).toThrow(/schedules\[1\]\.name/);
    expect(() => resolveSchedules([{ ...hourly, cron: '* *' }], {}, jobs)).toThrow(
      /schedules\[0\]\.cron/,
    );
    expect(() => resolveSchedules([{ ...hourly, catchUp: 'some' as 'all' }], {}, jobs)).toThrow(
      /schedules\[0\]\.catchUp/,
    );
    expect(() => resolveSchedules([], { graceMs: -1 }, jobs)).toThrow(/scheduler\.graceMs/);
    expect(() => resolveSchedules([{ ...hourly, priority: 'urgent' as 'high' }], {}, jobs)).toThrow(
      /schedules\[0\]\.priority/,
    );
  });

  it("submits a schedule's fires and triggers with its priority", async () => {
    const { sched, fake } = scheduler([{ ...hourly, priority: 'low' }]);
    await sched.pass(at('2026-01-01T00:30:00Z'));
    const [fire] = (await sched.pass(at('2026-01-01T01:00:05Z'))).fired;
    expect((await fake.store.getJob(fire!.jobId))?.priority).toBe('low');
    const triggered = await sched.trigger('hourly', at('2026-01-01T01:10:00Z'));
    expect((await fake.store.getJob(triggered.jobId))?.priority).toBe('low');
  });
});

describe('schedules through the Switchyard', () => {
  it('lists, pauses, resumes and triggers by name; an unknown name is UNKNOWN_SCHEDULE', async () => {
    const yard = createSwitchyard({
      jobs: [job],
      store: memoryStore(),
      transports: [memoryTransport({ name: 'memory' })],
      logger: silentLogger,
      schedules: [{ name: 'hourly', job: 'report', cron: '0 * * * *', params: { inputs: [1] } }],
    });
    try {
      const [listed] = await yard.listSchedules();
      expect(listed).toMatchObject({ name: 'hourly', job: 'report', paused: false });
      expect(listed!.nextFireAt!.getTime()).toBeGreaterThan(Date.now());
      expect(listed!.lastFireAt).toBeUndefined();
      await yard.pauseSchedule('hourly');
      expect((await yard.listSchedules())[0]).toMatchObject({ paused: true });
      expect((await yard.listSchedules())[0]?.nextFireAt).toBeUndefined();
      await yard.resumeSchedule('hourly');
      expect((await yard.listSchedules())[0]).toMatchObject({ paused: false });
      const triggered = await yard.triggerSchedule('hourly');
      expect(triggered).toMatchObject({ created: true, status: 'queued' });
      expect(await yard.getJob(triggered.jobId)).toMatchObject({ params: { inputs: [1] } });
      for (const call of [
        () => yard.pauseSchedule('nope'),
        () => yard.resumeSchedule('nope'),
        () => yard.triggerSchedule('nope'),
      ])
        await expect(call()).rejects.toMatchObject({ code: 'UNKNOWN_SCHEDULE' });
    } finally {
      await yard.close();
    }
  });
});

describe('submit timing', () => {
  it('refuses a bad runAt, delayMs or deadlineMs naming the field', async () => {
    const { fake } = scheduler([]);
    const params = { inputs: [1] };
    await expect(
      submit(fake.ctx, { jobName: 'report', params, options: { delayMs: -1 } }),
    ).rejects.toThrow(/delayMs/);
    await expect(
      submit(fake.ctx, { jobName: 'report', params, options: { runAt: new Date('nope') } }),
    ).rejects.toThrow(/runAt/);
    await expect(
      submit(fake.ctx, { jobName: 'report', params, options: { runAt: new Date(), delayMs: 5 } }),
    ).rejects.toThrow(/delayMs/);
    await expect(
      submit(fake.ctx, { jobName: 'report', params, options: { deadlineMs: 0 } }),
    ).rejects.toThrow(/deadlineMs/);
    const past = await submit(fake.ctx, {
      jobName: 'report',
      params,
      options: { runAt: new Date(Date.now() - 1000) },
    });
    expect(past.status).toBe('queued');
  });
});

describe('time through work()', () => {
  it('runs a delayed job once due, and cancels a job past its deadline with DEADLINE_EXCEEDED', async () => {
    let release: () => void = () => {};
    const slow = testJob({
      name: 'slow',
      stages: [{ handler: () => new Promise<number>((r) => (release = () => r(1))) }],
    });
    const yard = createSwitchyard({
      jobs: [job, slow],
      store: memoryStore(),
      transports: [memoryTransport({ name: 'memory', visibilityTimeoutMs: 500 })],
      logger: silentLogger,
      reconcile: { intervalMs: 0 },
      scheduler: { intervalMs: 50 },
    });
    const controller = new AbortController();
    const working = yard.work({ signal: controller.signal, waitMs: 20 });
    try {
      const delayed = await yard.submit('report', { inputs: [3] }, { delayMs: 300 });
      expect((await yard.getJob(delayed.jobId))?.status).toBe('scheduled');
      const done = await yard.waitFor(delayed.jobId, { pollIntervalMs: 20 });
      expect(done.status).toBe('succeeded');
      expect(done.startedAt!.getTime()).toBeGreaterThanOrEqual(done.runAt!.getTime());
      const late = await yard.submit('slow', { inputs: [1] }, { deadlineMs: 200 });
      const cancelled = await yard.waitFor(late.jobId, { pollIntervalMs: 20 });
      expect(cancelled).toMatchObject({
        status: 'cancelled',
        error: { code: 'DEADLINE_EXCEEDED' },
      });
    } finally {
      release();
      controller.abort();
      await working;
      await yard.close();
    }
  });
});
