import { createSwitchyard, memoryStore, memoryTransport, silentLogger } from '@switchyard/core';
import { createHttpHandler, type HttpHandlerOptions } from '@switchyard/core/http';
import { afterEach, describe, expect, it } from 'vitest';
import { bodyOf, squares, TOKEN } from './http-helpers.js';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

function api(options: Partial<HttpHandlerOptions> = {}) {
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
    ...options,
  });
  const call = (method: string, path: string, body?: unknown) =>
    handler(
      new Request(`http://localhost${path}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    );
  /** A request with the body and content type exactly as given. */
  const send = (path: string, body: BodyInit, contentType = 'application/json') =>
    handler(
      new Request(`http://localhost${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': contentType },
        body,
        duplex: 'half',
      } as RequestInit),
    );
  return { yard, call, send };
}

async function errorOf(res: Response) {
  const { error } = (await bodyOf(res)) as {
    error: { code: string; details?: { path: string; message: string }[] };
  };
  return error;
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

  it('400 naming the field for a runAt that is not ISO 8601 or outside the years 0001–9999, and for delays ending past 9999', async () => {
    const { call, yard } = api();
    const cases: [string, Record<string, unknown>][] = [
      ['runAt', { runAt: '1' }], // `new Date('1')` is the year 2001
      ['runAt', { runAt: 'March 7, 2030' }],
      ['runAt', { runAt: '+010000-01-01T00:00:00Z' }],
      ['runAt', { runAt: '0000-12-31T00:00:00Z' }],
      ['runAt', { runAt: '2030-02-30T00:00:00Z' }],
      ['delayMs', { delayMs: 1e300 }],
      ['delayMs', { delayMs: 1e15 }],
      ['deadlineMs', { deadlineMs: 1e300 }],
      ['deadlineMs', { runAt: '2099-01-01T00:00:00Z', deadlineMs: 1e15 }],
    ];
    for (const [field, timing] of cases) {
      const res = await call('POST', '/api/jobs/submit/squares', { params: { n: 1 }, ...timing });
      expect(res.status, JSON.stringify(timing)).toBe(400);
      const error = await errorOf(res);
      expect(error.code).toBe('INVALID_INPUT');
      expect(error.details?.map((d) => d.path)).toEqual([field]);
    }
    expect((await yard.listJobs({})).jobs).toEqual([]);
    // ISO 8601 within the range is taken; a date-time without an offset is UTC.
    const ok = await call('POST', '/api/jobs/submit/squares', {
      params: { n: 1 },
      runAt: '2099-01-01T00:00',
      deadlineMs: 60_000,
    });
    expect(ok.status).toBe(202);
    const view = await bodyOf(await call('GET', (await bodyOf(ok)).statusUrl as string));
    expect(view).toMatchObject({ status: 'scheduled', runAt: '2099-01-01T00:00:00.000Z' });
  });

  it("reads a schedule action's body under the rules of every POST: 415, 413, malformed JSON, unknown fields", async () => {
    const { call, send, yard } = api({ maxBodyBytes: 1000 });
    for (const action of ['pause', 'resume', 'trigger']) {
      const path = `/api/schedules/nightly/${action}`;
      const unsupported = await send(path, 'garbage', 'text/plain');
      expect(unsupported.status, action).toBe(415);
      expect((await errorOf(unsupported)).code).toBe('UNSUPPORTED_MEDIA_TYPE');
      const large = await send(path, JSON.stringify({ x: 'a'.repeat(2000) }));
      expect(large.status, action).toBe(413);
      expect((await errorOf(large)).code).toBe('PAYLOAD_TOO_LARGE');
      let pulled = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (++pulled > 1000) controller.close();
          else controller.enqueue(new TextEncoder().encode(' '.repeat(100)));
        },
      });
      expect((await send(path, stream)).status, action).toBe(413);
      expect(pulled).toBeLessThan(50);
      const malformed = await send(path, '{"force":');
      expect(malformed.status, action).toBe(400);
      expect((await errorOf(malformed)).code).toBe('MALFORMED_JSON');
      for (const body of ['{"force":true}', '[]', 'null']) {
        const res = await send(path, body);
        expect(res.status, `${action} ${body}`).toBe(400);
        const error = await errorOf(res);
        expect(error.code).toBe('INVALID_INPUT');
        expect(error.details?.map((d) => d.path)).toEqual([
          body === '{"force":true}' ? 'force' : '',
        ]);
      }
    }
    // None of those acted.
    const [schedule] = (await yard.listSchedules()) as { paused: boolean }[];
    expect(schedule?.paused).toBe(false);
    expect((await yard.listJobs({})).jobs).toEqual([]);
    // An empty body and {} are fine.
    expect((await call('POST', '/api/schedules/nightly/pause')).status).toBe(200);
    expect((await call('POST', '/api/schedules/nightly/resume', {})).status).toBe(200);
    expect((await send('/api/schedules/nightly/trigger', '', 'text/plain')).status).toBe(202);
  });
});
