import {
  createSwitchyard,
  defineJob,
  defineTask,
  memoryStore,
  memoryTransport,
  silentLogger,
  stage,
} from '@switchyard/core';
import { createHttpHandler } from '@switchyard/core/http';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { bodyOf, squares, TOKEN } from './http-helpers.js';

/** A one-stage job of 4 tasks whose task 2 fails (no retries) while `broken.on` holds. */
function fragileJob(broken: { on: boolean }) {
  const fragile = defineTask({
    name: 'fragile',
    input: z.number(),
    retry: { maxAttempts: 1 },
    handler: (i) => {
      if (i === 2 && broken.on) throw new Error('broken for now');
      return i;
    },
  });
  return defineJob({
    name: 'fragile',
    params: z.object({ k: z.number() }),
    stages: [stage({ name: 'only', task: fragile, fanOut: () => [0, 1, 2, 3] })],
  });
}

const closing: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
});

/** A Switchyard on the memory drivers behind the HTTP handler; `work()` runs it until the test ends. */
function api(options: { work?: boolean } = {}) {
  const broken = { on: true };
  const yard = createSwitchyard({
    jobs: [squares, fragileJob(broken)],
    store: memoryStore(),
    transports: [
      memoryTransport({ name: 'memory', visibilityTimeoutMs: 500 }),
      memoryTransport({ name: 'other', visibilityTimeoutMs: 500 }),
    ],
    logger: silentLogger,
    reconcile: { intervalMs: 0 },
  });
  const controller = new AbortController();
  const working = options.work
    ? yard.work({ signal: controller.signal, waitMs: 20, visibilityTimeoutMs: 500 })
    : Promise.resolve();
  closing.push(async () => {
    controller.abort();
    await working;
    await yard.close();
  });
  const handler = createHttpHandler(yard, {
    auth: { bearerTokens: [TOKEN] },
    logger: silentLogger,
  });
  const call = (method: string, path: string, body?: unknown) =>
    handler(
      new Request(`http://localhost${path}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        ...(body === undefined
          ? {}
          : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      }),
    );
  const submit = async (job: string, params: unknown, transport?: string) =>
    (await yard.submit(job as 'squares', params as never, transport ? { transport } : {}))
      .jobId as string;
  return { yard, call, submit, broken };
}

async function expectIssues(res: Response) {
  expect(res.status).toBe(400);
  const { error } = (await bodyOf(res)) as {
    error: { code: string; message: string; details?: { path: string; message: string }[] };
  };
  expect(error.code).toBe('INVALID_INPUT');
  expect(JSON.stringify(error)).not.toMatch(/\n\s+at /);
  return error.details ?? [];
}

async function expectConflict(res: Response) {
  expect(res.status).toBe(409);
  const { error } = (await bodyOf(res)) as { error: { code: string; details: unknown } };
  expect(error.code).toBe('NOTHING_TO_RETRY');
  return error.details;
}
const paths = (issues: { path: string }[]) => issues.map((i) => i.path).sort();

interface Page {
  jobs: { id: string; name: string; status: string; transport: string; createdAt: string }[];
  nextCursor?: string;
}

describe('GET /api/jobs', () => {
  it('pages newest first through every job with the cursor, and filters', async () => {
    const a = api();
    const ids: string[] = [];
    for (let n = 0; n < 7; n++)
      ids.push(await a.submit('squares', { n }, n < 2 ? 'other' : 'memory'));
    const seen: Page['jobs'] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const q = new URLSearchParams({ limit: '3', ...(cursor ? { cursor } : {}) });
      const res = await a.call('GET', `/api/jobs?${q}`);
      expect(res.status).toBe(200);
      const page = (await bodyOf(res)) as unknown as Page;
      expect(page.jobs.length).toBeLessThanOrEqual(3);
      seen.push(...page.jobs);
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen.map((j) => j.id).sort()).toEqual([...ids].sort());
    // Newest first: created at descending, then id descending (code point order).
    const desc = (x: string, y: string) => (x < y ? 1 : x > y ? -1 : 0);
    const order = [...seen].sort((x, y) => desc(x.createdAt, y.createdAt) || desc(x.id, y.id));
    expect(seen.map((j) => j.id)).toEqual(order.map((j) => j.id));
    expect(seen[0]).toMatchObject({ name: 'squares', status: 'queued' });

    const other = (await bodyOf(
      await a.call('GET', '/api/jobs?transport=other'),
    )) as unknown as Page;
    expect(other.jobs.map((j) => j.id).sort()).toEqual(ids.slice(0, 2).sort());
    expect(other.nextCursor).toBeUndefined();
    const several = (await bodyOf(
      await a.call('GET', '/api/jobs?status=failed&status=queued&name=squares'),
    )) as unknown as Page;
    expect(several.jobs).toHaveLength(7);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect(await bodyOf(await a.call('GET', `/api/jobs?createdAfter=${future}`))).toEqual({
      jobs: [],
    });
    expect(
      (
        (await bodyOf(
          await a.call('GET', `/api/jobs?createdBefore=${future}&limit=500`),
        )) as unknown as Page
      ).jobs,
    ).toHaveLength(7);
  });

  it('400 naming every bad parameter: unknown, wrong status, bad date, limit out of range, bad cursor', async () => {
    const a = api();
    const issues = await expectIssues(
      await a.call(
        'GET',
        '/api/jobs?status=done&limit=501&createdBefore=yesterday&created_after=2026-01-01&x=1',
      ),
    );
    expect(paths(issues)).toEqual(['createdBefore', 'created_after', 'limit', 'status', 'x']);
    expect(issues.find((i) => i.path === 'created_after')?.message).toContain('createdAfter');
    expect(paths(await expectIssues(await a.call('GET', '/api/jobs?limit=0')))).toEqual(['limit']);
    expect(paths(await expectIssues(await a.call('GET', '/api/jobs?limit=2.5')))).toEqual([
      'limit',
    ]);
    expect(paths(await expectIssues(await a.call('GET', '/api/jobs?name=a%00b')))).toEqual([
      'name',
    ]);
    expect(paths(await expectIssues(await a.call('GET', '/api/jobs?cursor=bm9wZQ')))).toEqual([
      'cursor',
    ]);
    const wrongMethod = await a.call('POST', '/api/jobs');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('POST /api/jobs/{jobId}/retry', () => {
  it('re-runs a poisoned task and the job ends succeeded; 409 once nothing is left to retry', async () => {
    const a = api({ work: true });
    const jobId = await a.submit('fragile', { k: 1 });
    const failed = await a.yard.waitFor(jobId, { pollIntervalMs: 20 });
    expect(failed.status).toBe('failed');
    expect(failed.stages[0]).toMatchObject({ succeeded: 3, failed: 1 });

    a.broken.on = false;
    const res = await a.call('POST', `/api/jobs/${jobId}/retry`, { stage: 'only' });
    expect(res.status).toBe(200);
    expect(await bodyOf(res)).toEqual({ jobId, retried: 1, status: 'running' });
    const view = await a.yard.waitFor(jobId, { pollIntervalMs: 20 });
    expect(view.status).toBe('succeeded');
    expect(view.stages[0]).toMatchObject({ succeeded: 4, failed: 0, total: 4 });

    const again = await a.call('POST', `/api/jobs/${jobId}/retry`);
    expect(again.status).toBe(409);
    expect(await bodyOf(again)).toMatchObject({
      error: { code: 'NOTHING_TO_RETRY', details: { jobId, status: 'succeeded' } },
    });
  });

  it('retries named tasks; 404 for an unknown job, 409 for a cancelled one, 400 for bad fields', async () => {
    const a = api({ work: true });
    const jobId = await a.submit('fragile', { k: 2 });
    expect((await a.yard.waitFor(jobId, { pollIntervalMs: 20 })).status).toBe('failed');
    a.broken.on = false;
    const taskId = `${jobId}.0.2`;
    const res = await a.call('POST', `/api/jobs/${jobId}/retry`, { taskIds: [taskId] });
    expect(await bodyOf(res)).toEqual({ jobId, retried: 1, status: 'running' });
    expect((await a.yard.waitFor(jobId, { pollIntervalMs: 20 })).status).toBe('succeeded');

    expect(
      (await bodyOf(await a.call('POST', '/api/jobs/nope/retry'))) as { error: { code: string } },
    ).toMatchObject({ error: { code: 'JOB_NOT_FOUND' } });
    const issues = await expectIssues(
      await a.call('POST', `/api/jobs/${jobId}/retry`, { stage: -1, task_ids: [], taskIds: [] }),
    );
    expect(paths(issues)).toEqual(['stage', 'taskIds', 'task_ids']);
    expect(
      paths(await expectIssues(await a.call('POST', `/api/jobs/${jobId}/retry`, { stage: 3 }))),
    ).toEqual(['stage']);
    expect(
      paths(
        await expectIssues(await a.call('POST', `/api/jobs/${jobId}/retry`, { stage: 'nope' })),
      ),
    ).toEqual(['stage']);
    expect(
      paths(await expectIssues(await a.call('POST', `/api/jobs/${jobId}/retry`, '[1]'))),
    ).toEqual(['']);
    expect(
      paths(await expectIssues(await a.call('POST', `/api/jobs/${jobId}/retry`, 'null'))),
    ).toEqual(['']);
    expect((await a.call('POST', `/api/jobs/${jobId}/retry`, '{"stage":')).status).toBe(400);

    const held = api(); // no worker: the job stays queued until cancelled
    const queued = await held.submit('fragile', { k: 3 });
    expect(await expectConflict(await held.call('POST', `/api/jobs/${queued}/retry`))).toEqual({
      jobId: queued,
      status: 'queued',
    });
    await held.yard.cancel(queued);
    expect(await expectConflict(await held.call('POST', `/api/jobs/${queued}/retry`))).toEqual({
      jobId: queued,
      status: 'cancelled',
    });
  });
});

describe('bulk operations by filter', () => {
  it('POST /api/jobs/retry re-runs every failed job the filter matches', async () => {
    const a = api({ work: true });
    const ids = [await a.submit('fragile', { k: 10 }), await a.submit('fragile', { k: 11 })];
    for (const id of ids)
      expect((await a.yard.waitFor(id, { pollIntervalMs: 20 })).status).toBe('failed');
    a.broken.on = false;
    const res = await a.call('POST', '/api/jobs/retry', { name: 'fragile' });
    expect(res.status).toBe(200);
    expect(await bodyOf(res)).toEqual({ jobs: 2, retried: 2 });
    for (const id of ids)
      expect((await a.yard.waitFor(id, { pollIntervalMs: 20 })).status).toBe('succeeded');
    expect(await bodyOf(await a.call('POST', '/api/jobs/retry', { status: 'failed' }))).toEqual({
      jobs: 0,
      retried: 0,
    });
  });

  it('POST /api/jobs/cancel cancels the matching unfinished jobs, delayed ones included', async () => {
    const a = api();
    const queued = [await a.submit('squares', { n: 1 }), await a.submit('squares', { n: 2 })];
    const other = await a.submit('fragile', { k: 1 });
    const delayed = (await a.yard.submit('squares', { n: 3 }, { delayMs: 3_600_000 })).jobId;
    const res = await a.call('POST', '/api/jobs/cancel', { name: 'squares' });
    expect(res.status).toBe(200);
    expect(await bodyOf(res)).toEqual({ cancelled: 3 });
    for (const id of [...queued, delayed])
      expect((await a.yard.getJob(id))?.status).toBe('cancelled');
    expect((await a.yard.getJob(other))?.status).toBe('queued');
    const listed = (await bodyOf(
      await a.call('GET', '/api/jobs?status=cancelled'),
    )) as unknown as Page;
    expect(listed.jobs).toHaveLength(3);
  });

  it('refuse an empty filter and statuses the operation cannot act on', async () => {
    const a = api();
    await a.submit('squares', { n: 1 });
    for (const path of ['/api/jobs/retry', '/api/jobs/cancel']) {
      expect(paths(await expectIssues(await a.call('POST', path)))).toEqual(['']);
      expect(paths(await expectIssues(await a.call('POST', path, {})))).toEqual(['']);
      expect(
        paths(
          await expectIssues(
            await a.call('POST', path, { status: 'nope', created_before: 'x', createdAfter: 5 }),
          ),
        ),
      ).toEqual(['createdAfter', 'created_before', 'status']);
    }
    expect(
      paths(await expectIssues(await a.call('POST', '/api/jobs/retry', { status: 'queued' }))),
    ).toEqual(['status']);
    expect(
      paths(await expectIssues(await a.call('POST', '/api/jobs/cancel', { status: 'failed' }))),
    ).toEqual(['status']);
    expect((await a.call('POST', '/api/jobs/cancel', 'name=x')).status).toBe(400);
    expect((await a.call('GET', '/api/jobs/cancel')).status).toBe(405);
    // Nothing was cancelled by any of these.
    expect(
      ((await bodyOf(await a.call('GET', '/api/jobs?status=queued'))) as unknown as Page).jobs,
    ).toHaveLength(1);
  });

  it('POST /api/jobs/purge deletes finished jobs by status or age, never on an empty body', async () => {
    const a = api({ work: true });
    const done = await a.submit('squares', { n: 3 });
    expect((await a.yard.waitFor(done, { pollIntervalMs: 20 })).status).toBe('succeeded');
    const fail = await a.submit('fragile', { k: 1 });
    expect((await a.yard.waitFor(fail, { pollIntervalMs: 20 })).status).toBe('failed');

    for (const body of [undefined, {}, { name: 'squares' }])
      expect(paths(await expectIssues(await a.call('POST', '/api/jobs/purge', body)))).toEqual([
        '',
      ]);
    expect(
      paths(
        await expectIssues(
          await a.call('POST', '/api/jobs/purge', {
            status: 'running',
            olderThan: 'a week',
            limit: 0,
            older_than: '7d',
          }),
        ),
      ),
    ).toEqual(['limit', 'olderThan', 'older_than', 'status']);
    expect(
      paths(
        await expectIssues(
          await a.call('POST', '/api/jobs/purge', {
            olderThan: '1d',
            finishedBefore: '2026-01-01',
          }),
        ),
      ),
    ).toEqual(['olderThan']);
    expect(
      paths(await expectIssues(await a.call('POST', '/api/jobs/purge', { olderThan: {} }))),
    ).toEqual(['olderThan']);

    // Finished moments ago: not older than a day.
    expect(await bodyOf(await a.call('POST', '/api/jobs/purge', { olderThan: '1d' }))).toEqual({
      jobs: 0,
      tasks: 0,
    });
    const res = await a.call('POST', '/api/jobs/purge', { status: 'succeeded' });
    expect(res.status).toBe(200);
    expect(await bodyOf(res)).toEqual({ jobs: 1, tasks: 3 });
    expect((await a.call('GET', `/api/jobs/status/${done}`)).status).toBe(404);
    expect((await a.yard.getJob(fail))?.status).toBe('failed');
    const later = new Date(Date.now() + 60_000).toISOString();
    expect(
      await bodyOf(
        await a.call('POST', '/api/jobs/purge', { finishedBefore: later, name: 'fragile' }),
      ),
    ).toEqual({ jobs: 1, tasks: 4 });
    expect(await bodyOf(await a.call('GET', '/api/jobs'))).toEqual({ jobs: [] });
  });
});

describe('dates outside the years 0001–9999', () => {
  it('are a 400 naming the field on every route that takes one, computed ones included', async () => {
    const a = api();
    await a.submit('squares', { n: 1 });
    const cases: [string, string, unknown, string][] = [
      ['POST', '/api/jobs/purge', { olderThan: '1000000d' }, 'olderThan'],
      ['POST', '/api/jobs/purge', { olderThan: 1e15 }, 'olderThan'],
      ['POST', '/api/jobs/purge', { finishedBefore: '0000-01-01' }, 'finishedBefore'],
      ['GET', '/api/jobs?createdAfter=0000-12-31', undefined, 'createdAfter'],
      ['GET', '/api/jobs?createdBefore=%2B010000-01-01T00:00:00Z', undefined, 'createdBefore'],
      ['POST', '/api/jobs/cancel', { createdBefore: '0000-01-01' }, 'createdBefore'],
      ['POST', '/api/jobs/retry', { createdAfter: '+010000-01-01T00:00:00Z' }, 'createdAfter'],
    ];
    for (const [method, path, body, field] of cases)
      expect(paths(await expectIssues(await a.call(method, path, body))), path).toEqual([field]);
    expect(((await bodyOf(await a.call('GET', '/api/jobs'))) as unknown as Page).jobs).toHaveLength(
      1,
    );
  });
});
