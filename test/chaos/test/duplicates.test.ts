/**
 * Duplicates and ordering on each real path: every message sent twice with random extra delays
 * (core's faultyTransport over the real transport), and every message's first `complete` turned
 * into an abandon (`retry`, delay 0) after the processing happened, so it is delivered and
 * processed again. Results must equal a crash-free run and every count must be exact.
 */
import type { Settlement, Transport } from '@switchyard/core/driver';
import { type FaultyTransport, faultyTransport } from '@switchyard/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitDrained } from '../src/harness.js';
import { CHAOS_JOB, chaosJob } from '../src/job.js';
import { PATHS } from '../src/paths.js';
import { finalizeEffect, recordingStore } from '../src/recording.js';
import { type SubmittedJob, verify } from '../src/verify.js';
import { type OpenPath, openPath } from './helpers.js';

/** Abandons each message's first completion: it comes straight back after being processed. */
function abandonFirstComplete(inner: Transport): Transport & { abandoned: number } {
  const seen = new Set<string>();
  const wrapper = {
    ...inner,
    name: inner.name,
    limits: inner.limits,
    abandoned: 0,
    send: inner.send.bind(inner),
    receive: inner.receive.bind(inner),
    close: inner.close.bind(inner),
    async settle(settlements: readonly Settlement[]) {
      await inner.settle(
        settlements.map((s): Settlement => {
          const key = `${s.message.queue}/${s.message.id}`;
          if (s.action !== 'complete' || seen.has(key)) return s;
          seen.add(key);
          wrapper.abandoned++;
          return { message: s.message, action: 'retry', delayMs: 0 };
        }),
      );
    },
  };
  if (inner.extendLock) wrapper.extendLock = inner.extendLock.bind(inner);
  return wrapper;
}

for (const path of PATHS) {
  describe(`duplicates and reordering on ${path}`, () => {
    let env: OpenPath | undefined;
    beforeAll(async () => {
      env = await openPath(path);
    });
    afterAll(async () => {
      await env?.close();
    });

    it('every message twice, delayed, and abandoned after processing: results and counts exact', async (ctx) => {
      if (!env) return ctx.skip();
      const { schema } = env.service.env;
      const faulty: FaultyTransport[] = [];
      const abandoning: { abandoned: number }[] = [];
      const { yard } = await env.start([chaosJob(finalizeEffect(env.admin, schema, 'dup'))], {
        workers: 2,
        wrapTransport: (t) => {
          // Every task a message, so that every one is duplicated: the task rows claimed in place
          // have their own fault test (driver-postgres, test/row-claims-faults.test.ts).
          const f = faultyTransport(t, { duplicate: 1, maxDelayMs: 150, rowClaims: false });
          faulty.push(f);
          const a = abandonFirstComplete(f);
          abandoning.push(a);
          return a;
        },
        wrapStore: (s) => recordingStore(s, { pool: env!.admin, schema, worker: 'dup' }),
      });
      const jobs: SubmittedJob[] = [];
      for (const seed of [11]) {
        const params = { n: 20, seed, chunk: 10 };
        jobs.push({ jobId: (await yard.submit(CHAOS_JOB, params)).jobId, params });
      }
      for (const { jobId } of jobs) {
        const job = await yard.waitFor(jobId, { pollIntervalMs: 100 });
        expect(job.status).toBe('succeeded');
      }
      const depth = await waitDrained(env.service, 30_000);
      const verdict = await verify(env.admin, schema, jobs, depth, { strict: true });
      const duplicated = faulty.reduce((a, f) => a + f.stats.duplicated, 0);
      const abandoned = abandoning.reduce((a, t) => a + t.abandoned, 0);
      console.info(
        `[chaos duplicates ${path}] ${verdict.tasks} tasks, ${duplicated} messages duplicated, ${abandoned} abandoned after processing, violations ${verdict.violations.length}`,
      );
      expect(verdict.violations).toEqual([]);
      expect(verdict.finalizeCalls).toBeGreaterThanOrEqual(1);
      // Every message the engine sent was duplicated; every message was abandoned once.
      expect(duplicated).toBeGreaterThanOrEqual(verdict.tasks);
      expect(abandoned).toBeGreaterThanOrEqual(verdict.tasks);
      await env.stopAll();
    });
  });
}
