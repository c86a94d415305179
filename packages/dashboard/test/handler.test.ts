import { signRequest } from '@switchyard/core/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboardHandler, type DashboardHandler } from '../src/index.js';
import { postgresAvailable, type TestYard, testYard } from './fixtures.js';

const TOKEN = 'dashboard-test-token';
const HMAC_KEY = 'dashboard-test-hmac-key';
const BASE = 'http://dash.test/dashboard';
const available = await postgresAvailable();

describe.skipIf(!available)('dashboard handler (PostgreSQL store)', () => {
  let env: TestYard;
  let handler: DashboardHandler;
  beforeAll(async () => {
    env = await testYard();
    handler = createDashboardHandler(env.yard, {
      auth: { bearerTokens: [TOKEN] },
      basePath: '/dashboard',
      transports: env.transports,
    });
  });
  afterAll(() => env?.close());

  const call = (path: string, init: RequestInit = {}) =>
    handler(new Request(`${BASE}${path}`, init));
  const signIn = async (base = BASE) => {
    const res = await handler(
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
    const js = await handler(new Request(`http://dash.test${src}`));
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
    const { jobId } = await env.yard.submit('squares', { n: 1 });
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
    const { jobId } = await env.yard.submit('squares', { n: 2, label: 'csrf' });
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
    expect((await env.yard.getJob(jobId))?.status).not.toBe('cancelled');
    const ok = await cancel({ ...json, 'x-csrf-token': csrfToken, origin: 'http://dash.test' });
    expect(ok.status).toBe(200);
    expect((await env.yard.getJob(jobId))?.status).toBe('cancelled');
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
    const { jobId } = await env.yard.submit(
      'squares',
      { n: 2, label: 'later' },
      { delayMs: 3_600_000 },
    );
    const res = await call('/api/jobs?status=scheduled', { headers: auth });
    expect(res.status).toBe(200);
    const page = (await res.json()) as { jobs: { id: string; status: string }[] };
    expect(page.jobs).toContainEqual(expect.objectContaining({ id: jobId, status: 'scheduled' }));
    expect(page.jobs.every((j) => j.status === 'scheduled')).toBe(true);
    await env.yard.cancel(jobId);
  });

  it('streams a job as Server-Sent Events: aggregates only', async () => {
    const { jobId } = await env.yard.submit('squares', { n: 3, label: 'sse' });
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
    const hmac = createDashboardHandler(env.yard, { auth: { hmacKey: HMAC_KEY } });
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

describe('dashboard bundle', () => {
  it('stays within its gzipped size budget', async () => {
    const { measure } = await import('../scripts/build-app.mjs');
    const report = await measure();
    expect(report.gzip).toBeGreaterThan(1000);
    expect(report.gzip).toBeLessThanOrEqual(report.budget);
  });
});
