import { signRequest } from '@switchyard/core/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboardHandler, type DashboardHandler } from '../src/index.js';
import { postgresAvailable, type TestYard, testYard } from './fixtures.js';

const TOKEN = 'dashboard-test-token';
const HMAC_KEY = 'dashboard-test-hmac-key';
const BASE = 'http://dash.test/dashboard';
const available = await postgresAvailable();

/** A test yard on a fresh schema and its dashboard under `/dashboard`, for `TOKEN`. */
function dashboardOfTestYard(): { env: TestYard; handler: DashboardHandler } {
  const t = {} as { env: TestYard; handler: DashboardHandler };
  beforeAll(async () => {
    t.env = await testYard();
    t.handler = createDashboardHandler(t.env.yard, {
      auth: { bearerTokens: [TOKEN] },
      basePath: '/dashboard',
      transports: t.env.transports,
    });
  });
  afterAll(() => t.env?.close());
  return t;
}

describe.skipIf(!available)('dashboard handler (PostgreSQL store)', () => {
  const t = dashboardOfTestYard();

  const call = (path: string, init: RequestInit = {}) =>
    t.handler(new Request(`${BASE}${path}`, init));
  const signIn = async (base = BASE) => {
    const res = await t.handler(
      new Request(`${base}/api/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: TOKEN }),
      }),
    );
    expect(res.status).toBe(200);
    const cookie = res.headers.get('set-cookie') ?? '';
    const { csrfToken } = (await res.json()) as { csrfToken: string };
    return { cookie, session: cookie.split(';')[0]!, csrfToken };
  };

  it('serves the app page with a strict CSP, no inline script, and its bundle', async () => {
    const res = await call('/');
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    expect(html).not.toMatch(/<script>(?!<\/script>)/);
    const src = /src="([^"]+app\.js[^"]*)"/.exec(html)?.[1];
    expect(src).toMatch(/^\/dashboard\/assets\/app\.js\?v=/);
    const js = await t.handler(new Request(`http://dash.test${src}`));
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toContain('javascript');
  });

  it('answers 401 to the API without credentials, and to a wrong token', async () => {
    const res = await call('/api/paths');
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      error: { code: 'UNAUTHORIZED', message: expect.any(String) },
    });
    expect((await call('/api/paths', { headers: { authorization: 'Bearer nope' } })).status).toBe(
      401,
    );
    const login = await call('/api/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'nope' }),
    });
    expect(login.status).toBe(401);
    expect(login.headers.get('set-cookie')).toBeNull();
  });

  it('signs a browser in with an HttpOnly, SameSite=Strict cookie, Secure over https', async () => {
    const { cookie } = await signIn();
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Path=\/dashboard/);
    expect(cookie).not.toMatch(/Secure/);
    const secure = await signIn('https://dash.test/dashboard');
    expect(secure.cookie).toMatch(/Secure/);
  });

  it('accepts the bearer token per request, like the API, with no CSRF token needed', async () => {
    const { jobId } = await t.env.yard.submit('squares', { n: 1 });
    const res = await call(`/api/jobs/${jobId}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ jobId, status: 'cancelled' });
  });

  it('refuses a session action without the CSRF token, from another origin, or not as JSON', async () => {
    const { session, csrfToken } = await signIn();
    const { jobId } = await t.env.yard.submit('squares', { n: 2, label: 'csrf' });
    const cancel = (headers: Record<string, string>) =>
      call(`/api/jobs/${jobId}/cancel`, {
        method: 'POST',
        headers: { cookie: session, ...headers },
        body: '{}',
      });
    const json = { 'content-type': 'application/json' };
    expect((await cancel(json)).status).toBe(403);
    expect((await cancel({ ...json, 'x-csrf-token': 'forged' })).status).toBe(403);
    expect(
      (await cancel({ ...json, 'x-csrf-token': csrfToken, origin: 'https://evil.test' })).status,
    ).toBe(403);
    expect((await cancel({ 'content-type': 'text/plain', 'x-csrf-token': csrfToken })).status).toBe(
      415,
    );
    expect((await t.env.yard.getJob(jobId))?.status).not.toBe('cancelled');
    const ok = await cancel({ ...json, 'x-csrf-token': csrfToken, origin: 'http://dash.test' });
    expect(ok.status).toBe(200);
    expect((await t.env.yard.getJob(jobId))?.status).toBe('cancelled');
  });

  it('answers 400 naming the field, 404 for an unknown job, 413 for a large body', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const bad = await call('/api/paths?window=forever', { headers: auth });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/^window/);
    expect((await call('/api/jobs/nope', { headers: auth })).status).toBe(404);
    expect((await call('/api/jobs?status=later', { headers: auth })).status).toBe(400);
    expect((await call('/api/dead-letters?transport=x', { headers: auth })).status).toBe(400);
    const big = await call('/api/dead-letters/replay', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ transport: 'postgres', pad: 'x'.repeat(100_000) }),
    });
    expect(big.status).toBe(413);
  });

  it("filters the job list by every job status, a delayed job's `scheduled` included", async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const { jobId } = await t.env.yard.submit(
      'squares',
      { n: 2, label: 'later' },
      { delayMs: 3_600_000 },
    );
    const res = await call('/api/jobs?status=scheduled', { headers: auth });
    expect(res.status).toBe(200);
    const page = (await res.json()) as { jobs: { id: string; status: string }[] };
    expect(page.jobs).toContainEqual(expect.objectContaining({ id: jobId, status: 'scheduled' }));
    expect(page.jobs.every((j) => j.status === 'scheduled')).toBe(true);
    await t.env.yard.cancel(jobId);
  });

  it('streams a job as Server-Sent Events: aggregates only', async () => {
    const { jobId } = await t.env.yard.submit('squares', { n: 3, label: 'sse' });
    const abort = new AbortController();
    const res = await call(`/api/live?job=${jobId}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: abort.signal,
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('event: job'))
      text += new TextDecoder().decode((await reader.read()).value);
    abort.abort();
    await reader.cancel().catch(() => {});
    const data = JSON.parse(/event: job\ndata: (.*)\n/.exec(text)![1]!);
    expect(data).toMatchObject({ id: jobId, name: 'squares', transport: 'postgres' });
    expect(data.stages[0]).toHaveProperty('pending');
    expect(data).not.toHaveProperty('failedTasks');
  });

  it('authenticates HMAC-signed requests with the API key scheme', async () => {
    const hmac = createDashboardHandler(t.env.yard, { auth: { hmacKey: HMAC_KEY } });
    const path = '/api/paths?window=all';
    const ok = await hmac(
      new Request(`http://dash.test${path}`, {
        headers: signRequest({ key: HMAC_KEY, method: 'GET', path }),
      }),
    );
    expect(ok.status).toBe(200);
    const wrong = await hmac(
      new Request(`http://dash.test${path}`, {
        headers: signRequest({ key: 'other', method: 'GET', path }),
      }),
    );
    expect(wrong.status).toBe(401);
  });
});

describe.skipIf(!available)('dashboard handler input (PostgreSQL store)', () => {
  const t = dashboardOfTestYard();

  const auth = { authorization: `Bearer ${TOKEN}` };
  const json = { ...auth, 'content-type': 'application/json' };
  const call = (path: string, init: RequestInit = {}) =>
    t.handler(new Request(`${BASE}${path}`, { ...init, headers: { ...auth, ...init.headers } }));
  const post = (path: string, body: unknown) =>
    call(path, { method: 'POST', headers: json, body: JSON.stringify(body) });
  /** The answer is a 400 whose message names `field` first (a stream is cancelled, not read). */
  const expectInvalid = async (res: Response | Promise<Response>, field: string) => {
    const r = await res;
    if (r.status !== 400) await r.body?.cancel();
    expect(r.status).toBe(400);
    const { error } = (await r.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(new RegExp(`^${field} `));
    expect(error.message).not.toMatch(/postgres/i);
    return error.message;
  };
  /** Runs a worker until `done` holds. */
  const workUntil = async (done: () => Promise<boolean>) => {
    const stop = new AbortController();
    const working = t.env.yard.work({ concurrency: 4, signal: stop.signal, waitMs: 50 });
    try {
      await expect.poll(done, { timeout: 20_000, interval: 100 }).toBe(true);
    } finally {
      stop.abort();
      await working;
    }
  };
  const base64url = (text: string) => Buffer.from(text).toString('base64url');

  it('refuses unknown body fields: a misspelt one never widens a replay or a re-run', async () => {
    const { jobId } = await t.env.yard.submit('flaky', { n: 3, poison: [0, 1], message: 'boom' });
    await t.env.transports[0]!.send('task', [{ body: 'not an envelope', messageId: 'bad-1' }]);
    const letters = () => t.env.transports[0]!.listDeadLetters!('task', { limit: 10 });
    await workUntil(
      async () =>
        (await t.env.yard.getJob(jobId))?.status === 'failed' && (await letters()).length > 0,
    );
    const before = await letters();

    expect(
      await expectInvalid(
        post('/api/dead-letters/replay', { transport: 'postgres', messageIds: ['10'] }),
        'messageIds',
      ),
    ).toContain('ids');
    expect(await letters()).toEqual(before);

    expect(
      await expectInvalid(post(`/api/jobs/${jobId}/retry`, { taskIds: ['nope'] }), 'taskIds'),
    ).toContain('did you mean task_ids?');
    await expectInvalid(post(`/api/jobs/${jobId}/retry`, { zzz: 1 }), 'zzz');
    await expectInvalid(post(`/api/jobs/${jobId}/retry`, { task_ids: ['nope'] }), 'task_ids');
    const job = await t.env.yard.getJob(jobId);
    expect(job?.status).toBe('failed');
    expect(job?.stages[0]?.failed).toBe(2);

    await expectInvalid(post(`/api/jobs/${jobId}/cancel`, { force: true }), 'force');
    await expectInvalid(post('/api/logout', { everywhere: true }), 'everywhere');
    await expectInvalid(post('/api/login', { token: TOKEN, user: 'x' }), 'user');
    expect((await t.env.yard.getJob(jobId))?.status).toBe('failed');

    const [failed] = (await t.env.yard.listTasks(jobId, { status: 'failed', limit: 1 })).tasks;
    const one = await post(`/api/jobs/${jobId}/retry`, { task_ids: [failed!.id] });
    expect(one.status).toBe(200);
    expect(await one.json()).toMatchObject({ retried: 1 });
  });

  it('refuses unknown query parameters on every API route, naming them', async () => {
    const { jobId } = await t.env.yard.submit('squares', { n: 1, label: 'query' });
    const message = await expectInvalid(
      call('/api/jobs?createdAfter=2999-01-01T00:00:00Z'),
      'createdAfter',
    );
    expect(message).toContain('did you mean created_after?');
    await expectInvalid(call(`/api/jobs/${jobId}?verbose=1`), 'verbose');
    await expectInvalid(call(`/api/jobs/${jobId}/tasks?state=failed`), 'state');
    await expectInvalid(call(`/api/progress?id=${jobId}`), 'id');
    await expectInvalid(call('/api/paths?windw=15m'), 'windw');
    await expectInvalid(call('/api/dead-letters?transport=postgres&queu=stage'), 'queu');
    await expectInvalid(call(`/api/live?jb=${jobId}`), 'jb');
    await expectInvalid(call('/api/session?x=1'), 'x');
    await expectInvalid(
      call(`/api/jobs/${jobId}/cancel?force=1`, { method: 'POST', headers: json, body: '{}' }),
      'force',
    );
    expect((await t.env.yard.getJob(jobId))?.status).not.toBe('cancelled');
    expect((await call('/api/jobs?created_after=2999-01-01T00:00:00Z')).status).toBe(200);
  });

  it('answers 400 naming window for a name that only an inherited property has', async () => {
    for (const window of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      await expectInvalid(call(`/api/paths?window=${window}`), 'window');
      await expectInvalid(call(`/api/live?paths=1&window=${window}`), 'window');
    }
  });

  it('answers 400 naming the field for a date outside 0001-9999 or a forged cursor', async () => {
    const { jobId } = await t.env.yard.submit('squares', { n: 1, label: 'dates' });
    await expectInvalid(call('/api/jobs?created_after=0000-01-01'), 'created_after');
    await expectInvalid(call('/api/jobs?created_after=%2B010000-01-01T00:00:00Z'), 'created_after');
    await expectInvalid(call('/api/jobs?created_before=2026-02-30'), 'created_before');
    await expectInvalid(call('/api/jobs?created_before=yesterday'), 'created_before');
    const forged = base64url('9223372036854775807:x');
    await expectInvalid(call(`/api/jobs?cursor=${forged}`), 'cursor');
    await expectInvalid(call(`/api/jobs?cursor=${base64url('nonsense')}`), 'cursor');
    await expectInvalid(call(`/api/jobs/${jobId}/tasks?cursor=${forged}`), 'cursor');
    expect(
      (await call('/api/jobs?created_after=0001-01-01&created_before=9999-12-31')).status,
    ).toBe(200);
  });

  it('answers 400 naming stage for a stage the job does not have, 404 for an unknown job', async () => {
    const { jobId } = await t.env.yard.submit('squares', { n: 1, label: 'stages' });
    for (const stage of [1e300, 2_147_483_648, 99, 2, -1, 0.5, 'nope', '', 'sum'])
      await expectInvalid(post(`/api/jobs/${jobId}/retry`, { stage }), 'stage');
    const missing = await post('/api/jobs/nope/retry', { stage: 0 });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'JOB_NOT_FOUND' } });
    const ok = await post(`/api/jobs/${jobId}/retry`, { stage: 1 });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ jobId, retried: 0 });
  });

  it('validates live ids up front, naming the parameter used', async () => {
    await expectInvalid(call('/api/live?job=a%00b'), 'job');
    await expectInvalid(call(`/api/live?job=${'x'.repeat(257)}`), 'job');
    const many = Array.from({ length: 51 }, (_, i) => `job-${i}`).join(',');
    await expectInvalid(call(`/api/live?jobs=${many}`), 'jobs');
    await expectInvalid(call('/api/live?jobs=a,b%00c'), 'jobs');
    await expectInvalid(call(`/api/progress?ids=${many}`), 'ids');
  });

  it('refuses U+0000 in ids and filters with a 400 naming the field', async () => {
    await expectInvalid(call('/api/jobs?name=%00'), 'name');
    await expectInvalid(call('/api/jobs?transport=%00'), 'transport');
    await expectInvalid(call('/api/jobs?cursor=a%00b'), 'cursor');
    await expectInvalid(call('/api/jobs/a%00b'), 'jobId');
    await expectInvalid(call('/api/jobs/a%00b/tasks'), 'jobId');
    await expectInvalid(post('/api/jobs/a%00b/cancel', {}), 'jobId');
    await expectInvalid(post('/api/jobs/a%00b/retry', {}), 'jobId');
    await expectInvalid(call('/api/progress?ids=a%00b'), 'ids');
    const { jobId } = await t.env.yard.submit('squares', { n: 1, label: 'nul' });
    await expectInvalid(post(`/api/jobs/${jobId}/retry`, { task_ids: ['a\u0000b'] }), 'task_ids');
    await expectInvalid(
      post('/api/dead-letters/replay', { transport: 'postgres', ids: ['1\u0000'] }),
      'ids',
    );
  });

  it('answers 405 with Allow for a known path asked with another method', async () => {
    const { session } = await (async () => {
      const res = await t.handler(
        new Request(`${BASE}/api/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ token: TOKEN }),
        }),
      );
      return { session: (res.headers.get('set-cookie') ?? '').split(';')[0]! };
    })();
    const cases: [string, string, Record<string, string>, string][] = [
      ['PUT', '/api/jobs', {}, 'GET, HEAD'],
      ['PUT', '/api/jobs', { 'content-type': 'application/json' }, 'GET, HEAD'],
      ['POST', '/api/jobs', {}, 'GET, HEAD'],
      ['DELETE', '/api/jobs/some-job', {}, 'GET, HEAD'],
      ['GET', '/api/jobs/some-job/retry', {}, 'POST'],
      ['GET', '/api/dead-letters/replay', {}, 'POST'],
      ['PATCH', '/api/session', {}, 'GET, HEAD'],
      ['POST', '/', {}, 'GET, HEAD'],
    ];
    for (const [method, path, headers, allow] of cases) {
      const res = await call(path, {
        method,
        headers,
        ...(method === 'GET' ? {} : { body: '{}' }),
      });
      expect([method, path, res.status]).toEqual([method, path, 405]);
      expect(res.headers.get('allow')).toBe(allow);
      expect(await res.json()).toMatchObject({ error: { code: 'METHOD_NOT_ALLOWED' } });
    }
    // A session without its CSRF token learns the method, and acts on nothing.
    const put = await t.handler(
      new Request(`${BASE}/api/jobs`, { method: 'PUT', headers: { cookie: session } }),
    );
    expect(put.status).toBe(405);
    const anonymous = await t.handler(new Request(`${BASE}/api/jobs`, { method: 'PUT' }));
    expect(anonymous.status).toBe(401);
    expect((await call('/api/nowhere', { method: 'PUT' })).status).toBe(404);
  });

  it('answers 404 JOB_NOT_FOUND for the tasks of an unknown job', async () => {
    const res = await call('/api/jobs/nope/tasks');
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'JOB_NOT_FOUND' } });
  });
});

describe('dashboard bundle', () => {
  it('stays within its gzipped size budget', async () => {
    const { measure } = await import('../scripts/build-app.mjs');
    const report = await measure();
    expect(report.gzip).toBeGreaterThan(1000);
    expect(report.gzip).toBeLessThanOrEqual(report.budget);
  });
});
