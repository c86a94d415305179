/**
 * Poison and bad input on each real path (PostgreSQL store; Postgres queue, Azurite, the Service
 * Bus emulator): a task that always throws, messages that are not ours, hostile job params.
 */
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { defineJob, defineTask, isSwitchyardError, stage } from '@switchyard/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CHAOS_JOB, chaosJob, expectedResults } from '../src/job.js';
import { PATHS } from '../src/paths.js';
import { eventually, type OpenPath, openPath } from './helpers.js';

/** Task 2 always throws; the others succeed. Attempt start times are recorded per task. */
const attemptsAt = new Map<string, number[]>();
const flaky = defineTask({
  name: 'flaky',
  input: z.object({ i: z.number().int() }),
  retry: { maxAttempts: 3, initialDelayMs: 300, factor: 2, jitter: 0 },
  handler: ({ i }, ctx) => {
    const list = attemptsAt.get(ctx.taskId) ?? [];
    list.push(Date.now());
    attemptsAt.set(ctx.taskId, list);
    if (i === 2) throw new Error(`boom on task ${i}, attempt ${ctx.attempt}`);
    return i * 10;
  },
});
const poisonJob = defineJob({
  name: 'poison',
  params: z.object({ key: z.string() }),
  stages: [
    stage({
      name: 'work',
      task: flaky,
      *fanOut() {
        for (let i = 0; i < 5; i++) yield { i };
      },
    }),
  ],
});

/** Echoes its params through a task and the finalize: what goes in must come out intact. */
const echoTask = defineTask({ name: 'echo', handler: (input: unknown) => input });
const echoJob = defineJob({
  name: 'echo',
  stages: [stage({ name: 'echo', task: echoTask, fanOut: (params: unknown) => [params] })],
  finalize: ({ params }) => params,
});

const noEffect = { finalized: async () => {} };

function deepNest(depth: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { d: v };
  return v;
}

describe('params nested 20,000 deep', () => {
  // Canonicalising such params used to overflow the stack with a bare RangeError.
  it('are rejected with a typed SwitchyardError', async () => {
    const { createSwitchyard, memoryStore, memoryTransport } = await import('@switchyard/core');
    const yard = createSwitchyard({
      jobs: [echoJob],
      store: memoryStore(),
      transports: [memoryTransport()],
    });
    try {
      const err = await yard.submit('echo', deepNest(20_000)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isSwitchyardError(err)).toBe(true);
      expect(err).toMatchObject({
        code: 'NOT_SERIALIZABLE',
        message: expect.stringContaining('nested more than'),
      });
    } finally {
      await yard.close();
    }
  });
});

for (const path of PATHS) {
  describe(`poison and bad input on ${path}`, () => {
    let env: OpenPath | undefined;
    beforeAll(async () => {
      env = await openPath(path);
    });
    afterAll(async () => {
      await env?.close();
    });

    it('a task that always throws: retried with backoff, poisoned with its last error, the job fails naming it', async (ctx) => {
      if (!env) return ctx.skip();
      const { yard, transports } = await env.start([poisonJob]);
      const { jobId } = await yard.submit('poison', { key: randomBytes(4).toString('hex') });
      const job = await yard.waitFor(jobId, { pollIntervalMs: 100 });
      const bad = `${jobId}.0.2`;
      expect(job.status).toBe('failed');
      expect(job.error?.message).toContain(bad);
      expect(job.error?.message).toContain('boom on task 2, attempt 3');
      // Backoff observable between attempts: ~300 ms, then ~600 ms (no jitter).
      const times = attemptsAt.get(bad) ?? [];
      expect(times).toHaveLength(3);
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      console.info(`[chaos poison ${path}] attempt gaps ${gaps.join(', ')} ms`);
      expect(gaps[0]).toBeGreaterThanOrEqual(280);
      expect(gaps[1]).toBeGreaterThanOrEqual(560);
      // (Storage Queues count visibility in whole seconds, so there both gaps round up to 1 s.)
      if (path !== 'storagequeue') expect(gaps[1]!).toBeGreaterThan(gaps[0]!);
      const task = await yard.store.getTask(bad);
      expect(task).toMatchObject({ status: 'failed', attempts: 3 });
      expect(task?.error?.message).toBe('boom on task 2, attempt 3');
      // The others are unaffected: each ran once and succeeded.
      const results = [];
      for await (const r of yard.results(jobId)) results.push([r.index, r.result]);
      expect(results).toEqual([
        [0, 0],
        [1, 10],
        [3, 30],
        [4, 40],
      ]);
      for (const i of [0, 1, 3, 4]) expect(attemptsAt.get(`${jobId}.0.${i}`)).toHaveLength(1);
      const dead = await eventually(
        async () => {
          const list = (await transports[0]!.listDeadLetters?.('task')) ?? [];
          return list.find((d) => d.body.includes(bad));
        },
        20_000,
        'the poisoned task message in the dead-letters',
      );
      expect(dead.reason).toBe('MaxAttemptsExceeded');
      expect(dead.description).toContain('boom on task 2, attempt 3');
      await env.stopAll();
    });

    it('messages that are not ours are dead-lettered with a reason; the worker keeps going', async (ctx) => {
      if (!env) return ctx.skip();
      const { yard, transports } = await env.start([poisonJob, chaosJob(noEffect)]);
      const transport = transports[0]!;
      // A live job (for a task id that does not exist) and a deleted one.
      const live = await yard.submit('poison', { key: `live-${randomBytes(4).toString('hex')}` });
      await yard.waitFor(live.jobId, { pollIntervalMs: 100 });
      const gone = await yard.submit('poison', { key: `gone-${randomBytes(4).toString('hex')}` });
      await yard.waitFor(gone.jobId, { pollIntervalMs: 100 });
      const s = `"${env.service.env.schema}"`;
      await env.admin.query(`DELETE FROM ${s}.tasks WHERE job_id = $1`, [gone.jobId]);
      await env.admin.query(`DELETE FROM ${s}.jobs WHERE id = $1`, [gone.jobId]);
      const randomText = randomBytes(48).toString('latin1').replace(/\0/g, '');
      const bad: { queue: 'task' | 'stage'; body: string; reason: string }[] = [
        { queue: 'task', body: randomText, reason: 'MalformedMessage' },
        { queue: 'task', body: '{"v":1,"kind":"task","jobId":', reason: 'MalformedMessage' },
        { queue: 'task', body: '[1,2,3]', reason: 'MalformedMessage' },
        { queue: 'stage', body: '{"hello":"world"}', reason: 'MalformedMessage' },
        {
          queue: 'task',
          body: JSON.stringify({
            v: 2,
            kind: 'task',
            jobId: live.jobId,
            stage: 0,
            taskId: `${live.jobId}.0.0`,
          }),
          reason: 'MalformedMessage',
        },
        {
          queue: 'task',
          body: JSON.stringify({
            v: 1,
            kind: 'task',
            jobId: live.jobId,
            stage: 0,
            taskId: `${live.jobId}.0.999`,
            input: { i: 999 },
          }),
          reason: 'TaskNotFound',
        },
        {
          queue: 'task',
          body: JSON.stringify({
            v: 1,
            kind: 'task',
            jobId: gone.jobId,
            stage: 0,
            taskId: `${gone.jobId}.0.0`,
            input: { i: 0 },
          }),
          reason: 'JobNotFound',
        },
        {
          queue: 'stage',
          body: JSON.stringify({ v: 1, kind: 'stage', jobId: gone.jobId, stage: 0 }),
          reason: 'JobNotFound',
        },
      ];
      for (const m of bad) await transport.send(m.queue, [{ body: m.body }]);
      for (const queue of ['task', 'stage'] as const) {
        const want = bad.filter((m) => m.queue === queue);
        const dead = await eventually(
          async () => {
            const list = (await transport.listDeadLetters?.(queue, { limit: 32 })) ?? [];
            const ours = want.map((m) => list.find((d) => d.body === m.body));
            return ours.every((d) => d !== undefined) ? ours : undefined;
          },
          30_000,
          `${want.length} dead-lettered ${queue} messages`,
        );
        for (const [i, d] of dead.entries()) {
          expect(d?.reason, want[i]!.body).toBe(want[i]!.reason);
          expect(d?.description).toBeTruthy();
        }
      }
      // Still working: a chaos job runs to its crash-free result.
      const params = { n: 30, seed: 7, chunk: 10 };
      const next = await yard.submit(CHAOS_JOB, params);
      const done = await yard.waitFor(next.jobId, { pollIntervalMs: 100 });
      expect(done.status).toBe('succeeded');
      expect(done.result).toEqual(expectedResults(params).result);
      console.info(
        `[chaos bad-input ${path}] ${bad.length} foreign messages dead-lettered with reasons`,
      );
      await env.stopAll();
    });

    it('hostile params are stored and returned intact or rejected clearly, never executed, never touching another job', async (ctx) => {
      if (!env) return ctx.skip();
      const { yard } = await env.start([echoJob]);
      const bystander = { note: 'bystander', n: 1 };
      const b = await yard.submit('echo', bystander);
      await yard.waitFor(b.jobId, { pollIntervalMs: 100 });
      const hostile: unknown[] = [
        {
          q: "'; DROP TABLE jobs; --",
          r: '" OR 1=1 --',
          s: '$1 $$ $tag$ \\x00 \\\\',
          t: `${b.jobId}'); UPDATE jobs SET status='failed`,
        },
        // Larger than any path's message limit (Storage 64 KB, Service Bus Standard 256 KB): claim check.
        { big: 'x'.repeat(300_000) },
        { big: '\u{1F600}'.repeat(40_000), nul: 'a\u0000b' },
        deepNest(200),
        JSON.parse(
          '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"a":{"__proto__":[1]}}',
        ),
        [b.jobId, { id: b.jobId, status: 'failed' }],
      ];
      const snapshot = async () =>
        (
          await env!.admin.query<{ id: string }>(
            `SELECT id, status, params::text, result::text, updated_at FROM "${env!.service.env.schema}".jobs ORDER BY id`,
          )
        ).rows;
      const snapshotBefore = await snapshot();
      let intact = 0;
      let rejected = 0;
      for (const params of hostile) {
        console.info(`[chaos hostile ${path}] submitting ${JSON.stringify(params).slice(0, 40)}`);
        let id: string;
        try {
          id = (await yard.submit('echo', params)).jobId;
        } catch (err) {
          // A clear, typed rejection is acceptable.
          expect(isSwitchyardError(err)).toBe(true);
          rejected++;
          continue;
        }
        const job = await yard.waitFor(id, {
          pollIntervalMs: 100,
          signal: AbortSignal.timeout(60_000),
        });
        const label = JSON.stringify(params).slice(0, 60);
        if (job.status !== 'succeeded')
          console.info(
            `[chaos hostile ${path}] ${label}: ${job.status} ${job.error?.message ?? ''}`,
          );
        if (job.status === 'failed') {
          expect(job.error?.message).toBeTruthy();
          rejected++;
          continue;
        }
        expect(job.status).toBe('succeeded');
        expect(isDeepStrictEqual(job.params, params), `params of ${label}`).toBe(true);
        expect(isDeepStrictEqual(job.result, params), `result of ${label}`).toBe(true);
        const results = [];
        for await (const r of yard.results(id)) results.push(r.result);
        expect(results).toHaveLength(1);
        expect(isDeepStrictEqual(results[0], params), `task result of ${label}`).toBe(true);
        intact++;
      }
      // Never executed: the bystander and the tables are untouched, nothing was polluted.
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      const after = await yard.getJob(b.jobId);
      expect(after).toMatchObject({ status: 'succeeded', params: bystander, result: bystander });
      const snapshotAfter = await snapshot();
      expect(snapshotAfter.filter((r) => snapshotBefore.some((b0) => b0.id === r.id))).toEqual(
        snapshotBefore,
      );
      console.info(
        `[chaos hostile ${path}] ${hostile.length} hostile params: ${intact} intact, ${rejected} rejected`,
      );
      await env.stopAll();
    });
  });
}
