import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/index.js';
import { parseOperation } from '../src/operations.js';

// In process (the command line's own code, on a real embedded store): a subprocess per call would
// cost a Node and TypeScript loader start each time. `cli.test.ts` covers the binary itself.
const fixtures = resolve(fileURLToPath(import.meta.url), '../fixtures/jobs.ts');
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-cli-ops-'));
});
afterAll(async () => {
  delete process.env.SWITCHYARD_TEST_BROKEN;
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(...args: string[]): Promise<Run> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c) => {
    out += c;
  });
  stderr.on('data', (c) => {
    err += c;
  });
  const code = await runCli([...args, '--jobs', fixtures], {
    stdout,
    stderr,
    env: { SWITCHYARD_DATA_DIR: join(dir, 'data') },
  });
  return { code, stdout: out, stderr: err };
}

const json = (r: Run) => JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
const ids = (r: Run) => (json(r).jobs as { id: string }[]).map((j) => j.id);

describe('operation arguments', () => {
  const now = new Date('2026-06-10T12:00:00Z');
  const ago = (ms: number) => new Date(now.getTime() - ms);

  it('turn flags into the filters, durations counted back from now', () => {
    expect(
      parseOperation(
        'jobs',
        [],
        {
          status: 'failed,cancelled',
          name: 'etl',
          transport: ['postgres'],
          since: '2h',
          limit: '20',
          cursor: 'c',
        },
        now,
      ),
    ).toEqual({
      kind: 'list',
      filter: {
        status: ['failed', 'cancelled'],
        name: 'etl',
        transport: 'postgres',
        createdAfter: ago(2 * 3_600_000),
        limit: 20,
        cursor: 'c',
      },
    });
    expect(parseOperation('jobs', [], { since: '2026-06-01T00:00:00Z' }, now)).toEqual({
      kind: 'list',
      filter: { createdAfter: new Date('2026-06-01T00:00:00Z') },
    });
    expect(parseOperation('cancel', [], { priority: 'low' }, now)).toMatchObject({
      filter: { priority: 'low' },
    });
    expect(parseOperation('jobs', [], { priority: 'urgent' }, now)).toBe(
      '--priority must be high, normal or low',
    );
    expect(parseOperation('retry', ['j'], { stage: '1', task: ['j.1.0', 'j.1.4'] }, now)).toEqual({
      kind: 'retry',
      jobId: 'j',
      options: { stage: 1, taskIds: ['j.1.0', 'j.1.4'] },
    });
    expect(parseOperation('retry', ['j'], { stage: 'reply' }, now)).toMatchObject({
      options: { stage: 'reply' },
    });
    expect(parseOperation('retry', [], { name: 'etl' }, now)).toEqual({
      kind: 'retryJobs',
      filter: { name: 'etl' },
    });
    expect(parseOperation('cancel', [], { status: 'scheduled,queued' }, now)).toEqual({
      kind: 'cancelJobs',
      filter: { status: ['scheduled', 'queued'] },
    });
    expect(parseOperation('purge', [], { 'older-than': '7d', name: 'etl' }, now)).toEqual({
      kind: 'purge',
      filter: { finishedBefore: ago(7 * 86_400_000), name: 'etl' },
    });
    // A status alone purges what finished before now.
    expect(parseOperation('purge', [], { status: 'succeeded' }, now)).toEqual({
      kind: 'purge',
      filter: { finishedBefore: now, status: ['succeeded'] },
    });
    for (const [command, args, flags] of [
      ['jobs', [], { since: '1' }],
      ['jobs', [], { transport: ['a', 'b'] }],
      ['jobs', [], { limit: '0' }],
      ['jobs', [], { cursor: '' }],
      ['retry', ['a', 'b'], {}],
      ['retry', [], { task: ['x'] }],
      ['purge', [], { 'older-than': `${'9'.repeat(400)}d` }],
      ['jobs', [], { since: `${'9'.repeat(400)}d` }],
    ] as const)
      expect(typeof parseOperation(command, [...args], flags, now), JSON.stringify(flags)).toBe(
        'string',
      );
  });
});

describe('switchyard jobs, retry, cancel, purge', () => {
  it('refuse bad or missing filters with exit 2 before opening the store', async () => {
    for (const args of [
      ['jobs', 'x'],
      ['jobs', '--status', 'done'],
      ['jobs', '--limit', '501'],
      ['jobs', '--since', 'yesterday'],
      ['jobs', '--older-than', '7d'],
      ['retry'],
      ['retry', '--stage', '1'],
      ['retry', 'job', '--status', 'failed'],
      ['retry', '--status', 'queued'],
      ['cancel'],
      ['cancel', '--status', 'failed'],
      ['cancel', 'job', '--task', 't'],
      ['purge'],
      ['purge', '--name', 'flaky'],
      ['purge', '--status', 'running'],
      ['purge', '--older-than', 'a week'],
      ['purge', 'job', '--status', 'failed'],
    ]) {
      const r = await cli(...args, '--json');
      expect(r.code, args.join(' ')).toBe(2);
      expect(json(r)).toMatchObject({ error: { code: 'USAGE' } });
    }
    const r = await cli('purge');
    expect(r.stderr).toContain('--status or --older-than');
    for (const command of ['jobs', 'retry', 'cancel', 'purge']) {
      const help = await cli(command, '--help');
      expect(help.code).toBe(0);
      expect(help.stdout.startsWith(`Usage: switchyard ${command}`), help.stdout).toBe(true);
    }
  });

  it('a poisoned task retried (one job, and by filter) re-runs and its job ends succeeded', {
    timeout: 180_000,
  }, async () => {
    process.env.SWITCHYARD_TEST_BROKEN = '1';
    const first = json(await cli('submit', 'flaky', '--param', 'n=3', '--json')).jobId as string;
    const second = json(await cli('submit', 'flaky', '--param', 'n=4', '--json')).jobId as string;
    // On the embedded store --watch runs a worker in process: both jobs run, and fail.
    expect(json(await cli('status', first, '--watch', '--json'))).toMatchObject({
      status: 'failed',
    });
    const failed = await cli('status', second, '--watch', '--json');
    expect(failed.code).toBe(1);
    expect(json(failed)).toMatchObject({ status: 'failed' });

    const listed = await cli('jobs', '--status', 'failed', '--json');
    expect(listed.code).toBe(0);
    expect(ids(listed).sort()).toEqual([first, second].sort());
    const shown = await cli('jobs', '--name', 'flaky');
    expect(shown.stdout).toMatch(/id\s+name\s+status\s+path\s+created\s+progress/);
    expect(shown.stdout).toMatch(
      new RegExp(`${first}\\s+flaky\\s+failed\\s+postgres\\s.*stage 1/1 mend 3/3 \\(1 failed\\)`),
    );
    expect(shown.stdout).not.toContain('next page');

    expect((await cli('retry', first, '--stage', '4')).code).toBe(2);
    delete process.env.SWITCHYARD_TEST_BROKEN;
    const one = await cli('retry', first, '--stage', 'mend', '--json');
    expect(one.code, one.stderr).toBe(0);
    expect(json(one)).toEqual({ jobId: first, retried: 1, status: 'running' });
    const bulk = await cli('retry', '--status', 'failed', '--name', 'flaky', '--json');
    expect(json(bulk)).toEqual({ jobs: 1, retried: 1 });

    for (const id of [first, second]) {
      const done = await cli('status', id, '--watch', '--json');
      expect(done.code, done.stderr).toBe(0);
      expect(json(done)).toMatchObject({ status: 'succeeded' });
    }
    const again = await cli('retry', first);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain(`nothing to retry: job ${first} has no failed task there`);
    expect((await cli('retry', 'no-such-job')).code).toBe(1);
  });

  it('pages with --cursor, cancels by filter, purges by status and age', {
    timeout: 180_000,
  }, async () => {
    const queued = [];
    for (const n of [1, 2, 3])
      queued.push(json(await cli('submit', 'fine', '--param', `n=${n}`, '--json')).jobId as string);
    const page1 = await cli('jobs', '--name', 'fine', '--limit', '2', '--json');
    expect(ids(page1)).toEqual([...queued].reverse().slice(0, 2));
    const cursor = json(page1).nextCursor as string;
    expect(typeof cursor).toBe('string');
    const table = await cli('jobs', '--name', 'fine', '--limit', '2');
    expect(table.stdout).toContain(`next page: --cursor ${cursor}`);
    const page2 = await cli('jobs', '--name', 'fine', '--limit', '2', '--cursor', cursor, '--json');
    expect(json(page2)).toEqual({ jobs: [expect.objectContaining({ id: queued[0] })] });
    expect(ids(await cli('jobs', '--since', '2999-01-01T00:00:00Z', '--json'))).toEqual([]);

    const one = await cli('cancel', queued[0]!, '--json');
    expect(json(one)).toEqual({ jobId: queued[0], cancelled: true, status: 'cancelled' });
    const cancelled = await cli('cancel', '--name', 'fine', '--status', 'queued');
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout.trim()).toBe('cancelled 2 job(s)');
    const twice = await cli('cancel', queued[1]!);
    expect(twice.code).toBe(1);
    expect(twice.stdout).toContain('already cancelled');

    expect(
      json(await cli('purge', '--status', 'cancelled', '--older-than', '7d', '--json')),
    ).toEqual({ jobs: 0, tasks: 0 });
    const purged = await cli('purge', '--status', 'cancelled', '--json');
    expect(purged.code, purged.stderr).toBe(0);
    expect(json(purged)).toEqual({ jobs: 3, tasks: 0 });
    const rest = await cli('purge', '--status', 'succeeded,failed', '--name', 'flaky');
    expect(rest.stdout.trim()).toBe('purged 2 job(s) and 7 task(s)');
    expect((await cli('jobs')).stdout.trim()).toBe('no jobs');
  });
});
