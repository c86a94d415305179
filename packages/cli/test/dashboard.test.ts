import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../src/index.js';

const fixtures = resolve(fileURLToPath(import.meta.url), '../fixtures/jobs.ts');
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-cli-dashboard-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

it('`switchyard dashboard` serves the dashboard API until interrupted', async () => {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stop = new AbortController();
  let printed = '';
  const url = new Promise<string>((done) =>
    stdout.on('data', (chunk) => {
      printed += chunk;
      const match = /"url":"([^"]+)"/.exec(printed);
      if (match) done(match[1]!);
    }),
  );
  const exit = runCli(['dashboard', '--port', '0', '--json', '--jobs', fixtures], {
    stdout,
    stderr,
    env: { SWITCHYARD_DATA_DIR: join(dir, 'data') },
    signal: stop.signal,
  });
  const base = await url;
  const session = (await (await fetch(`${base}/api/session`)).json()) as {
    authenticated: boolean;
    method: string;
    transports: string[];
  };
  expect(session).toMatchObject({ authenticated: true, method: 'none' });
  expect(session.transports).toContain('postgres');
  stop.abort();
  expect(await exit).toBe(0);
  await expect(fetch(`${base}/api/session`)).rejects.toThrow();
});

it('`switchyard dashboard` refuses a bad port before opening anything', async () => {
  const stderr = new PassThrough();
  let text = '';
  stderr.on('data', (c) => {
    text += c;
  });
  const code = await runCli(['dashboard', '--port', 'http'], {
    stdout: new PassThrough(),
    stderr,
    env: {},
  });
  expect(code).toBe(2);
  expect(text).toContain('--port');
});
