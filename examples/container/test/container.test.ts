import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSettings } from '../src/server.js';

const root = resolve(fileURLToPath(import.meta.url), '../../../..');
const entry = join(root, 'examples/container/src/main.ts');
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const KEY = `container-test-key-${randomUUID()}`;

/** PostgreSQL if reachable (own schema), else PGlite; with REQUIRE_SERVICES=1 a missing server fails. */
async function pickDatabase(): Promise<{
  env: Record<string, string>;
  cleanup: () => Promise<void>;
  kind: string;
}> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const schema = `container_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    return {
      kind: 'postgres',
      env: { DATABASE_URL, DATABASE_SCHEMA: schema },
      cleanup: async () => {
        // `<schema>_sched`: the schedules test's own.
        for (const name of [schema, `${schema}_sched`])
          await client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
        await client.end();
      },
    };
  } catch (err) {
    await client.end().catch(() => {});
    if (process.env.REQUIRE_SERVICES === '1')
      throw new Error(
        `REQUIRE_SERVICES=1 but PostgreSQL at ${DATABASE_URL.replace(/\/\/[^@]*@/, '//***@')} is unreachable: ${(err as Error).message}`,
      );
    console.warn(
      '[container tests] PostgreSQL unreachable; running on PGlite instead. Set REQUIRE_SERVICES=1 to fail.',
    );
    const dir = await mkdtemp(join(tmpdir(), 'switchyard-container-'));
    return {
      kind: 'pglite',
      env: { SWITCHYARD_DATA_DIR: dir },
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  }
}

interface Proc {
  child: ChildProcess;
  port: Promise<number>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
}

const children = new Set<ChildProcess>();

/** Server processes seen in logs (their pids), killed after the file whatever happened. */
const servers = new Set<number>();

/**
 * Starts the container host: `node … src/main.ts` as the Dockerfile does, or with `viaNpm` the
 * README's `npm start -w @switchyard/example-container` from the repository root.
 */
function startContainer(env: Record<string, string>, viaNpm = false): Proc {
  const [command, args] = viaNpm
    ? ['npm', ['start', '-w', '@switchyard/example-container']]
    : [
        process.execPath,
        ['--max-semi-space-size=64', '--conditions=@switchyard/source', '--import', tsx, entry],
      ];
  const child = spawn(command, args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let resolvePort: (port: number) => void;
  const port = new Promise<number>((r) => {
    resolvePort = r;
  });
  child.stdout!.on('data', (d: Buffer) => {
    out += d;
    for (const line of out.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const entry = JSON.parse(line) as { message?: string; port?: number; pid?: number };
        if (entry.message === 'listening' && entry.port) {
          if (entry.pid) servers.add(entry.pid);
          resolvePort(entry.port);
        }
      } catch {
        // partial line
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d;
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      r({ code, signal });
    }),
  );
  return { child, port, exit, output: () => out };
}

const within = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([
    p,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms),
    ),
  ]);

let db: Awaited<ReturnType<typeof pickDatabase>>;
beforeAll(async () => {
  db = await pickDatabase();
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const pid of servers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await db?.cleanup();
});

describe('container host (real process)', () => {
  it('drains on SIGTERM mid-job (exit 0), and after a restart the job completes with exact counts', async () => {
    const env = {
      ...db.env,
      PORT: '0',
      HOST: '127.0.0.1',
      SWITCHYARD_API_KEY: KEY,
      WORKER_CONCURRENCY: '4',
      VISIBILITY_TIMEOUT_MS: '3000',
      RECONCILE_INTERVAL_MS: '2000',
      RECONCILE_OLDER_THAN_MS: '5000',
    };
    const first = startContainer(env);
    const port = await within(first.port, 45_000, `first start (${first.output()})`);
    const api = (path: string, init: RequestInit = {}) =>
      fetch(`http://127.0.0.1:${port}${path}`, {
        ...init,
        headers: {
          authorization: `Bearer ${KEY}`,
          'content-type': 'application/json',
          ...init.headers,
        },
      });

    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/api/metrics/comparison`)).status).toBe(401);

    const n = 24;
    const submit = await api('/api/jobs/submit/hello_world', {
      method: 'POST',
      body: JSON.stringify({ n, workMs: 300 }),
    });
    expect(submit.status).toBe(202);
    const { jobId, statusUrl } = (await submit.json()) as { jobId: string; statusUrl: string };

    // Wait until the job is visibly under way, then stop the container mid-job.
    for (;;) {
      const view = (await (await api(statusUrl)).json()) as { stages: { succeeded: number }[] };
      if ((view.stages[0]?.succeeded ?? 0) >= 4) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const stoppedAt = Date.now();
    first.child.kill('SIGTERM');
    const exited = await within(first.exit, 15_000, 'graceful exit');
    expect(exited, first.output()).toEqual({ code: 0, signal: null });
    expect(Date.now() - stoppedAt).toBeLessThan(15_000);
    expect(first.output()).toContain('"message":"stopped"');

    const second = startContainer(env);
    const port2 = await within(second.port, 45_000, `restart (${second.output()})`);
    const api2 = (path: string) =>
      fetch(`http://127.0.0.1:${port2}${path}`, { headers: { authorization: `Bearer ${KEY}` } });
    const midway = (await (await api2(statusUrl)).json()) as { status: string };
    expect(midway.status).not.toBe('succeeded'); // really stopped mid-job

    let view: {
      status: string;
      result?: unknown;
      stages: { name: string; total: number; succeeded: number; failed: number }[];
    };
    const deadline = Date.now() + 90_000;
    for (;;) {
      view = (await (await api2(statusUrl)).json()) as typeof view;
      if (['succeeded', 'failed', 'cancelled'].includes(view.status) || Date.now() > deadline)
        break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(view.status, second.output()).toBe('succeeded');
    expect(view.result).toEqual({ greeted: n, replied: n });
    expect(view.stages.map((s) => [s.name, s.total, s.succeeded, s.failed])).toEqual([
      ['greet', n, n, 0],
      ['reply', n, n, 0],
    ]);
    const tasks = (await (await api2(`/api/jobs/${jobId}/tasks?limit=1000`)).json()) as {
      tasks: { status: string }[];
    };
    expect(tasks.tasks).toHaveLength(2 * n);
    expect(tasks.tasks.every((t) => t.status === 'succeeded')).toBe(true);

    second.child.kill('SIGTERM');
    expect(await within(second.exit, 15_000, 'second graceful exit')).toEqual({
      code: 0,
      signal: null,
    });
  }, 240_000);

  it("work() evaluates the jobs module's schedules: a fire is listed as the last fire, its job runs", async () => {
    const proc = startContainer({
      ...db.env,
      // A database of its own: no other test's scheduler lease is in the way.
      ...(db.env.DATABASE_SCHEMA
        ? { DATABASE_SCHEMA: `${db.env.DATABASE_SCHEMA}_sched` }
        : { SWITCHYARD_DATA_DIR: join(db.env.SWITCHYARD_DATA_DIR!, 'sched') }),
      PORT: '0',
      HOST: '127.0.0.1',
      SWITCHYARD_API_KEY: KEY,
      SWITCHYARD_JOBS: join(root, 'packages/cli/test/fixtures/every-second.ts'),
      SCHEDULER_INTERVAL_MS: '200',
    });
    const port = await within(proc.port, 45_000, `start (${proc.output()})`);
    const api = async <T>(path: string) =>
      (await (
        await fetch(`http://127.0.0.1:${port}${path}`, {
          headers: { authorization: `Bearer ${KEY}` },
        })
      ).json()) as T;
    let view: { status: string; params?: { fireAt: string } } | undefined;
    let schedule: { name: string; lastFireAt?: string; lastJobId?: string } | undefined;
    const deadline = Date.now() + 60_000;
    while (view?.status !== 'succeeded' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      [schedule] = (await api<{ schedules: (typeof schedule & {})[] }>('/api/schedules')).schedules;
      if (schedule?.lastJobId) view = await api(`/api/jobs/status/${schedule.lastJobId}`);
    }
    expect(schedule?.name).toBe('every-second');
    expect(view, proc.output()).toMatchObject({
      status: 'succeeded',
      params: { fireAt: schedule?.lastFireAt },
    });
    proc.child.kill('SIGTERM');
    expect(await within(proc.exit, 15_000, 'graceful exit')).toEqual({ code: 0, signal: null });
  }, 120_000);

  it('started as the README says (npm start -w …), SIGTERM to that pid stops the server', async () => {
    const proc = startContainer(
      { ...db.env, PORT: '0', HOST: '127.0.0.1', SWITCHYARD_API_KEY: KEY },
      true,
    );
    const port = await within(proc.port, 60_000, `npm start (${proc.output()})`);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    proc.child.kill('SIGTERM');
    await within(proc.exit, 20_000, 'npm exit');
    // The server itself must be gone: its port refuses connections.
    const deadline = Date.now() + 15_000;
    let answering = true;
    while (answering && Date.now() < deadline) {
      answering = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        () => true,
        () => false,
      );
      if (answering) await new Promise((r) => setTimeout(r, 200));
    }
    expect(answering, `the server still answers on ${port} after npm exited`).toBe(false);
    expect(proc.output()).toContain('"message":"stopped"');
  }, 100_000);

  it('numeric settings: empty is the default, anything but a plain integer is named', () => {
    const blank = readSettings({ WORKER_CONCURRENCY: '', SHUTDOWN_TIMEOUT_MS: ' ', PORT: '' });
    expect([blank.concurrency, blank.shutdownTimeoutMs, blank.port]).toEqual([64, 25_000, 8080]);
    for (const bad of ['abc', '-1', '1.5']) {
      let issues: { path: string }[] = [];
      try {
        readSettings({ WORKER_CONCURRENCY: bad, VISIBILITY_TIMEOUT_MS: bad });
      } catch (err) {
        issues = (err as { issues: { path: string }[] }).issues;
      }
      expect(
        issues.map((i) => i.path),
        bad,
      ).toEqual(['WORKER_CONCURRENCY', 'VISIBILITY_TIMEOUT_MS']);
    }
    // A port past 65535, and a duration no timer holds (it would fire at once), are named too.
    let issues: { path: string }[] = [];
    try {
      readSettings({ PORT: '99999', SHUTDOWN_TIMEOUT_MS: '3000000000' });
    } catch (err) {
      issues = (err as { issues: { path: string }[] }).issues;
    }
    expect(issues.map((i) => i.path)).toEqual(['PORT', 'SHUTDOWN_TIMEOUT_MS']);
  });

  it('refuses to start without API credentials (exit 3, variable named)', async () => {
    const proc = startContainer({ ...db.env, PORT: '0', WORKER_CONCURRENCY: 'lots' });
    const { code } = await within(proc.exit, 45_000, 'config failure');
    expect(code).toBe(3);
    expect(proc.output()).toContain('WORKER_CONCURRENCY');
    const proc2 = startContainer({ ...db.env, PORT: '0' });
    expect((await within(proc2.exit, 45_000, 'no credentials')).code).toBe(3);
    expect(proc2.output()).toContain('SWITCHYARD_API_KEY');
  }, 100_000);
});
