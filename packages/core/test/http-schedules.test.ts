import { createSwitchyard, memoryStore, memoryTransport, silentLogger } from '@switchyard/core';
import { createHttpHandler } from '@switchyard/core/http';
import { afterEach, describe, expect, it } from 'vitest';
import { bodyOf, squares, TOKEN } from './http-helpers.js';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

function api() {
  const yard = createSwitchyard({
    jobs: [squares],
    store: memoryStore(),
    transports: [memoryTransport({ name: 'memory' })],
    logger: silentLogger,
    reconcile: { intervalMs: 0 },
    schedules: [{ name: 'nightly', job: 'squares', cron: '0 2 * * *', params: { n: 2 } }],
  });
  close = () => yard.close();
  const handler = createHttpHandler(yard, {
    auth: { bearerTokens: [TOKEN] },
    logger: silentLogger,
  });
  const call = (method: string, path: string, body?: unknown) =>
    handler(
      new Request(`http://localhost${path}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    );
  return { yard, call };
}

describe('HTTP: schedules and delayed submit', () => {
  it('lists schedules, pauses, resumes and triggers one', async () => {
    const { call } = api();
    const list = await bodyOf(await call('GET', '/api/schedules'));
    expect(list.schedules).toEqual([
      expect.objectContaining({
        name: 'nightly',
        job: 'squares',
        paused: false,
        nextFireAt: expect.any(String),
      }),
    ]);
    expect(await bodyOf(await call('POST', '/api/schedules/nightly/pause'))).toEqual({
      schedule: 'nightly',
      paused: true,
    });
    const paused = await bodyOf(await call('GET', '/api/schedules'));
    expect((paused.schedules as { paused: boolean }[])[0]?.paused).toBe(true);
    await call('POST', '/api/schedules/nightly/resume');
    const triggered = await call('POST', '/api/schedules/nightly/trigger');
    expect(triggered.status).toBe(202);
    expect(await bodyOf(triggered)).toMatchObject({ created: true, status: 'queued' });
    const unknown = await call('POST', '/api/schedules/nope/trigger');
    expect(unknown.status).toBe(404);
    expect(((await bodyOf(unknown)).error as { code: string }).code).toBe('UNKNOWN_SCHEDULE');
    expect((await call('GET', '/api/schedules/nightly/pause')).status).toBe(405);
  });

  it('submits a delayed job (scheduled) and refuses bad timing fields naming them', async () => {
    const { call } = api();
    const res = await call('POST', '/api/jobs/submit/squares', { n: 1, delayMs: 60_000 });
    expect(res.status).toBe(202);
    const body = await bodyOf(res);
    expect(body.status).toBe('scheduled');
    const view = await bodyOf(await call('GET', body.statusUrl as string));
    expect(view).toMatchObject({ status: 'scheduled', runAt: expect.any(String) });
    for (const [field, value] of [
      ['runAt', 'not a date'],
      ['delayMs', '5'],
      ['deadlineMs', -1],
    ] as const) {
      const bad = await call('POST', '/api/jobs/submit/squares', {
        params: { n: 1 },
        [field]: value,
      });
      expect(bad.status, field).toBe(400);
      expect(JSON.stringify(await bodyOf(bad))).toContain(field);
    }
  });
});
