import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `npm run demo -- …` as a user would; `interruptWhen` sends `signal` (SIGINT: Ctrl-C) once
 * stderr matches it.
 */
function demo(
  args: string[],
  interruptWhen?: RegExp,
  signal: NodeJS.Signals = 'SIGINT',
): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@switchyard/source', '--import', 'tsx', 'examples/local/src/demo.ts', ...args],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
      if (interruptWhen && !interrupted && interruptWhen.test(stderr)) {
        interrupted = true;
        child.kill(signal);
      }
    });
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

const summaryOf = (run: Run) => JSON.parse(run.stdout.trim().split('\n').pop()!);

describe('npm run demo', () => {
  it('runs hello_world on the memory drivers and prints a JSON summary', {
    timeout: 60_000,
  }, async () => {
    const run = await demo(['--memory', '--n', '300', '--json']);
    expect(run.code).toBe(0);
    expect(summaryOf(run)).toMatchObject({
      status: 'succeeded',
      tasks: 600,
      result: { greeted: 300, replied: 300 },
    });
  });

  it('keeps serving the dashboard after the job until SIGTERM, then exits 0', {
    timeout: 60_000,
  }, async () => {
    const run = await demo(
      ['--memory', '--n', '50', '--dashboard', '--port', '0', '--json'],
      /the dashboard stays at/,
      'SIGTERM',
    );
    expect(run.code, run.stderr).toBe(0);
    expect(summaryOf(run)).toMatchObject({ status: 'succeeded', tasks: 100 });
  });

  it('resumes the same job after Ctrl-C on PGlite without redoing finished tasks', {
    timeout: 180_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'switchyard-demo-'));
    dirs.push(dir);
    // Progress goes to a pipe every 2 s: the job must run well past that for Ctrl-C to land
    // mid-job on a fast machine (200,000 tasks: about 10 s at 20,000 tasks/s).
    const args = ['--n', '100000', '--dir', dir, '--concurrency', '32'];
    // Interrupt once greet has made visible progress (a stage line reports done tasks).
    const first = await demo([...args, '--json'], /greet\s+[1-9]\d*\/100000/);
    expect(first.code).toBe(130);
    const stopped = summaryOf(first);
    expect(stopped.status).toBe('running');
    expect(stopped.tasks).toBeGreaterThan(0);
    expect(stopped.tasks).toBeLessThan(200000);

    const second = await demo([...args, '--json']);
    expect(second.code).toBe(0);
    const finished = summaryOf(second);
    expect(finished).toMatchObject({
      jobId: stopped.jobId,
      status: 'succeeded',
      tasks: 200000,
      result: { greeted: 100000, replied: 100000 },
    });
    expect(finished.executedThisRun).toBe(200000 - stopped.tasks);
  });
});
