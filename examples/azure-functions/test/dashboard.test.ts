/** The dashboard's HTTP trigger: its routes, sign-in with the API key, polling instead of SSE. */
import { randomUUID } from 'node:crypto';
import { HttpRequest, type HttpResponseInit } from '@azure/functions';
import { createYardFromEnv, type YardFromEnv } from '@switchyard/cli';
import { helloWorld } from '@switchyard/example-jobs';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { createDashboardFunction, registerDashboard } from '../src/dashboard.js';

const KEY = 'functions-dashboard-key';
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `fndash_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
let host: Promise<YardFromEnv> | undefined;
/** One Switchyard for both handlers of the test. */
const shared = (env: Record<string, string>) => {
  host ??= createYardFromEnv({ jobs: [helloWorld], env });
  return host;
};
afterAll(async () => {
  await (await host)?.close();
  const db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await db.end();
});

const call = async (
  fn: (request: HttpRequest) => Promise<HttpResponseInit>,
  method: string,
  path: string,
  init: { body?: unknown; cookie?: string; csrf?: string } = {},
) => {
  const res = await fn(
    new HttpRequest({
      method,
      url: `http://localhost:7071${path}`,
      headers: {
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(init.cookie ? { cookie: init.cookie } : {}),
        ...(init.csrf ? { 'x-csrf-token': init.csrf } : {}),
      },
      ...(init.body === undefined ? {} : { body: { string: JSON.stringify(init.body) } }),
    }),
  );
  const headers = new Headers(res.headers as HeadersInit);
  const text = new TextDecoder().decode(res.body as Uint8Array);
  return { status: res.status ?? 200, headers, json: () => JSON.parse(text) };
};

it('registers GET/POST /dashboard and /dashboard/{*path} as anonymous routes', () => {
  const routes: { name: string; route?: string; authLevel?: string; methods?: string[] }[] = [];
  registerDashboard({ http: (name, options) => void routes.push({ name, ...options }) }, () =>
    Promise.resolve({}),
  );
  expect(routes.map((r) => [r.route, r.authLevel, r.methods])).toEqual([
    ['dashboard', 'anonymous', ['GET', 'POST']],
    ['dashboard/{*path}', 'anonymous', ['GET', 'POST']],
  ]);
});

it('answers 503 until a key is configured, then signs in with the API key and polls', async () => {
  const env = { DATABASE_URL, DATABASE_SCHEMA: schema };
  const noKey = createDashboardFunction(() => shared(env), env);
  expect((await call(noKey, 'GET', '/dashboard/api/session')).status).toBe(503);

  const fn = createDashboardFunction(
    async () => ({
      ...(await shared(env)),
      apiKey: async () => KEY,
    }),
    env,
  );
  const anonymous = await call(fn, 'GET', '/dashboard/api/session');
  expect(anonymous.json()).toMatchObject({ authenticated: false, method: 'token' });
  expect(
    (await call(fn, 'POST', '/dashboard/api/login', { body: { token: 'wrong' } })).status,
  ).toBe(401);
  const login = await call(fn, 'POST', '/dashboard/api/login', { body: { token: KEY } });
  expect(login.status).toBe(200);
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  expect(login.headers.get('set-cookie')).toMatch(/HttpOnly; .*SameSite=Strict/);
  const live = await call(fn, 'GET', '/dashboard/api/live?paths=1', { cookie });
  expect(live.status).toBe(501);
  const paths = await call(fn, 'GET', '/dashboard/api/paths?window=all', { cookie });
  expect(paths.status, JSON.stringify(paths.json())).toBe(200);
  expect(paths.json().paths.map((p: { transport: string }) => p.transport)).toContain('postgres');
});
