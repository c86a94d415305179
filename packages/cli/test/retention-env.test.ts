import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSwitchyardError } from '@switchyard/core';
import { helloWorld } from '@switchyard/example-jobs';
import { afterAll, describe, expect, it } from 'vitest';
import { createYardFromEnv, retentionFromEnv } from '../src/env.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('retention from the environment', () => {
  it('reads SWITCHYARD_RETAIN_* as durations or milliseconds; unset or blank keeps jobs', () => {
    expect(
      retentionFromEnv({
        SWITCHYARD_RETAIN_SUCCEEDED: '7d',
        SWITCHYARD_RETAIN_FAILED: ' 90000 ',
        SWITCHYARD_RETAIN_CANCELLED: '  ',
      }),
    ).toEqual({ retention: { succeeded: 7 * 86_400_000, failed: 90_000 }, issues: [] });
    expect(retentionFromEnv({})).toEqual({ retention: undefined, issues: [] });
  });

  it('names each malformed variable without repeating its value', () => {
    const { issues } = retentionFromEnv({
      SWITCHYARD_RETAIN_SUCCEEDED: 'forever',
      SWITCHYARD_RETAIN_FAILED: '-1d',
      SWITCHYARD_RETAIN_CANCELLED: '1e999',
    });
    expect(issues.map((i) => i.path)).toEqual([
      'SWITCHYARD_RETAIN_SUCCEEDED',
      'SWITCHYARD_RETAIN_FAILED',
      'SWITCHYARD_RETAIN_CANCELLED',
    ]);
    for (const i of issues) expect(i.message).not.toMatch(/forever|-1d|1e999/);
  });

  it('one CONFIG_ERROR names the retention variables beside the other bad ones', async () => {
    const error = await createYardFromEnv({
      jobs: [helloWorld],
      env: { ENABLE_SERVICE_BUS: 'maybe', SWITCHYARD_RETAIN_FAILED: 'a while' },
    }).catch((e: unknown) => e);
    expect(isSwitchyardError(error) && error.code).toBe('CONFIG_ERROR');
    const paths = isSwitchyardError(error) ? (error.issues ?? []).map((i) => i.path) : [];
    expect(paths).toEqual(
      expect.arrayContaining(['ENABLE_SERVICE_BUS', 'SWITCHYARD_RETAIN_FAILED']),
    );
  });

  it("the reconciler's pass deletes a finished job past its status's retention, and keeps the rest", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'switchyard-retention-'));
    dirs.push(dir);
    const host = await createYardFromEnv({
      jobs: [helloWorld],
      // Succeeded jobs are kept 1 ms; failed ones for ever (unset).
      env: { SWITCHYARD_DATA_DIR: dir, SWITCHYARD_RETAIN_SUCCEEDED: '1' },
      memoryTransport: true,
      postgresTransport: false,
    });
    const { yard } = host;
    const controller = new AbortController();
    const worker = yard.work({ signal: controller.signal, waitMs: 50 });
    try {
      const { jobId } = await yard.submit('hello_world', { n: 3 }, { transport: 'memory' });
      expect((await yard.waitFor(jobId, { signal: AbortSignal.timeout(30_000) })).status).toBe(
        'succeeded',
      );
      // Cancelled jobs have no retention set: this one stays (other params: a new job).
      const later = await yard.submit(
        'hello_world',
        { n: 4 },
        { transport: 'memory', delayMs: 600_000 },
      );
      expect(await yard.cancel(later.jobId)).toBe(true);
      await new Promise((r) => setTimeout(r, 5));
      const pass = await yard.reconcile();
      expect(pass.purged.jobs).toBe(1);
      expect(await yard.getJob(jobId)).toBeUndefined();
      expect((await yard.getJob(later.jobId))?.status).toBe('cancelled');
    } finally {
      controller.abort();
      await worker;
      await host.close();
    }
  }, 60_000);
});
