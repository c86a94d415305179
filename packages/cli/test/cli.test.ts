import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(fileURLToPath(import.meta.url), '../../../..');
const bin = join(root, 'packages/cli/src/bin.ts');
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const fixtures = join(root, 'packages/cli/test/fixtures/jobs.ts');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts the source binary in the background (a worker, a watch): its output as it comes, its exit
 * code when it ends.
 */
function startCli(args: string[], env: Record<string, string>) {
  const child = spawn(
    process.execPath,
    ['--conditions=@switchyard/source', '--import', tsx, bin, ...args],
    {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: dir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => {
    output.stdout += d;
  });
  child.stderr.on('data', (d) => {
    output.stderr += d;
  });
  const exited = new Promise<number | null>((r) => child.on('close', r));
  return { child, output, exited };
}

/** Runs the source binary as a subprocess in a clean environment (no Azure or database variables). */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@switchyard/source', '--import', tsx, bin, ...args],
      {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: dir,
          SWITCHYARD_DATA_DIR: join(dir, 'data'),
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

const lastJson = (text: string) =>
  JSON.parse(text.trim().split('\n').at(-1)!) as Record<string, unknown>;

describe('switchyard CLI (subprocess)', () => {
  it('--help prints usage and the exit codes (0)', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: switchyard <command>');
    for (const cmd of [
      'submit',
      'status',
      'metrics',
      'tasks',
      'dead-letters',
      'work',
      'jobs',
      'retry',
      'cancel',
      'purge',
    ])
      expect(r.stdout).toContain(cmd);
    expect(r.stdout).toMatch(/Exit codes: 0 ok/);
  });

  it("<command> --help prints that command's usage, not the command list", async () => {
    for (const [args, heading] of [
      [['submit', '--help'], 'Usage: switchyard submit <job>'],
      [['dead-letters', '-h'], 'Usage: switchyard dead-letters list <transport>'],
      [['help', 'work'], 'Usage: switchyard work'],
    ] as const) {
      const r = await cli([...args]);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout.startsWith(heading), r.stdout).toBe(true);
      expect(r.stdout).toContain('--json');
      expect(r.stdout).not.toContain('Commands:');
    }
    expect((await cli(['submit', '--help'])).stdout).toContain('--idempotency-key KEY');
    const unknown = await cli(['help', 'bogus']);
    expect(unknown.code).toBe(2);
    expect(existsSync(join(dir, 'data'))).toBe(false);
  }, 120_000);

  it('usage errors exit 2 before opening anything', async () => {
    for (const args of [
      [],
      ['bogus'],
      ['submit'],
      ['submit', 'hello_world', '--nope'],
      ['submit', 'hello_world', '--param', 'oops'],
      ['submit', 'hello_world', '--param', '__proto__.x=1'],
      ['submit', 'hello_world', '--delay', 'soon'],
      ['submit', 'hello_world', '--run-at', 'tomorrow'],
      ['submit', 'hello_world', '--run-at', '1'],
      ['submit', 'hello_world', '--run-at', '+010000-01-01T00:00:00Z'],
      ['submit', 'hello_world', '--delay', '5', '--run-at', '2099-01-01T00:00:00Z'],
      ['submit', 'hello_world', '--priority', 'urgent'],
      ['status', 'a', 'b'],
      ['metrics', '--status', 'failed'],
      ['tasks', 'x', '--status', 'weird'],
      ['dead-letters', 'purge', 'postgres'],
      ['work', '--concurrency', '0'],
      ['purge'],
      ['cancel', '--status', 'failed'],
      // One value, given twice: the last would win silently (a purge of a minute-old job).
      ['purge', '--status', 'cancelled', '--older-than', '30d', '--older-than', '1s'],
      ['submit', 'hello_world', '--priority', 'high', '--priority', 'low'],
      // An empty value would quietly change what runs.
      ['submit', 'hello_world', '--idempotency-key', ''],
      ['submit', 'hello_world', '--transport', ''],
    ]) {
      const r = await cli([...args, '--json']);
      expect(r.code, args.join(' ')).toBe(2);
      expect(lastJson(r.stdout), args.join(' ')).toMatchObject({ error: { code: 'USAGE' } });
    }
    expect(existsSync(join(dir, 'data'))).toBe(false);
  }, 120_000);

  it('submit --json on the embedded store, then status, --watch, tasks and metrics', async () => {
    const sub = await cli(['submit', 'hello_world', '--param', 'n=4', '--json']);
    expect(sub.code, sub.stderr).toBe(0);
    const submitted = lastJson(sub.stdout);
    expect(submitted).toMatchObject({ created: true, status: 'queued', transport: 'postgres' });
    const jobId = submitted.jobId as string;

    const status = await cli(['status', jobId, '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(lastJson(status.stdout)).toMatchObject({
      id: jobId,
      status: 'queued',
      name: 'hello_world',
    });

    // --watch on the embedded store runs a worker in process and waits for the end.
    const watched = await cli(['status', jobId, '--watch', '--json']);
    expect(watched.code, watched.stderr).toBe(0);
    expect(lastJson(watched.stdout)).toMatchObject({
      status: 'succeeded',
      result: { greeted: 4, replied: 4 },
    });

    const again = await cli(['submit', 'hello_world', '--param', 'n=4', '--json']);
    expect(lastJson(again.stdout)).toMatchObject({ jobId, created: false, status: 'succeeded' });

    const tasks = await cli(['tasks', jobId, '--stage', 'greet', '--json']);
    expect(tasks.code).toBe(0);
    expect((lastJson(tasks.stdout).tasks as unknown[]).length).toBe(4);
    const failed = await cli(['tasks', jobId, '--status', 'failed', '--json']);
    expect(lastJson(failed.stdout)).toEqual({ tasks: [] });

    const metrics = await cli(['metrics', '--json']);
    expect(metrics.code).toBe(0);
    const paths = lastJson(metrics.stdout).transports as {
      transport: string;
      jobs: { succeeded: number };
      usage?: { perTask: number | null };
      cost?: { currency: string; perMillionTasks: number | null };
    }[];
    const postgres = paths.find((p) => p.transport === 'postgres');
    expect(postgres?.jobs.succeeded).toBe(1);
    // The postgres transport counts its statements, but this metrics process ran no task: its own
    // few statements are reported without being divided by the store's tasks.
    expect(postgres?.usage?.perTask).toBeNull();
    expect(postgres?.cost).toMatchObject({ currency: 'USD', perMillionTasks: null });
    const table = await cli(['metrics']);
    expect(table.stdout).toMatch(/metric\s+postgres/);
    expect(table.stdout).toMatch(/job latency p95 ms/);
    expect(table.stdout).toMatch(/billable ops\/task\s+-$/m);
    expect(table.stdout).toMatch(/counted per process; this one ran no tasks/);

    const dl = await cli(['dead-letters', 'list', 'postgres', '--json']);
    expect(dl.code, dl.stderr).toBe(0);
    expect(lastJson(dl.stdout)).toEqual({ transport: 'postgres', deadLetters: [] });
  }, 180_000);

  it('invalid params exit 2 naming each field; unknown job ids exit 1', async () => {
    const r = await cli([
      'submit',
      'hello_world',
      '--param',
      'n=-1',
      '--param',
      'workMs="x"',
      '--json',
    ]);
    expect(r.code).toBe(2);
    const { error } = lastJson(r.stdout) as {
      error: { code: string; details: { path: string }[] };
    };
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.details.map((d) => d.path).sort()).toEqual(['params.n', 'params.workMs']);
    expect(r.stderr).toContain('params.n');
    const missing = await cli(['status', 'no-such-job']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('not found');
  }, 120_000);

  it('a failed job exits 1 (jobs from --jobs)', async () => {
    const r = await cli([
      'submit',
      'failing',
      '--param',
      'n=2',
      '--watch',
      '--json',
      '--jobs',
      fixtures,
    ]);
    expect(r.code, r.stderr).toBe(1);
    expect(lastJson(r.stdout)).toMatchObject({ status: 'failed' });
    const failed = await cli([
      'tasks',
      lastJson(r.stdout).id as string,
      '--status',
      'failed',
      '--json',
      '--jobs',
      fixtures,
    ]);
    expect((lastJson(failed.stdout).tasks as unknown[]).length).toBe(2);
    // The poisoned task messages are in the postgres path's dead letters, with the reason.
    const listed = await cli([
      'dead-letters',
      'list',
      'postgres',
      '--queue',
      'task',
      '--json',
      '--jobs',
      fixtures,
    ]);
    expect(listed.code, listed.stderr).toBe(0);
    const letters = lastJson(listed.stdout).deadLetters as { reason: string; queue: string }[];
    expect(letters).toHaveLength(2);
    expect(letters.every((l) => l.queue === 'task' && l.reason === 'MaxAttemptsExceeded')).toBe(
      true,
    );
    const replayed = await cli([
      'dead-letters',
      'replay',
      'postgres',
      '--queue',
      'task',
      '--json',
      '--jobs',
      fixtures,
    ]);
    expect(replayed.code, replayed.stderr).toBe(0);
    expect(lastJson(replayed.stdout)).toEqual({ transport: 'postgres', replayed: { task: 2 } });
    // A replay re-opens what it replays: the two tasks are no longer failed (they run again).
    const reopened = await cli([
      'tasks',
      lastJson(r.stdout).id as string,
      '--status',
      'failed',
      '--json',
      '--jobs',
      fixtures,
    ]);
    expect((lastJson(reopened.stdout).tasks as unknown[]).length).toBe(0);
    const table = await cli(['dead-letters', 'list', 'postgres', '--jobs', fixtures]);
    expect(table.stdout).toContain('no dead letters on postgres');
    const noJobs = await cli(['metrics', '--jobs', './does-not-exist.js']);
    expect(noJobs.code).toBe(3);
    expect(noJobs.stderr).toContain('SWITCHYARD_JOBS');
  }, 120_000);

  it('an empty SWITCHYARD_JOBS or --jobs counts as unset: the default jobs load', async () => {
    for (const [args, env] of [
      [['metrics', '--json'], { SWITCHYARD_JOBS: '' }],
      [['metrics', '--json'], { SWITCHYARD_JOBS: '  ' }],
      [['metrics', '--json', '--jobs', ''], {}],
    ] as const) {
      const r = await cli([...args], env);
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson(r.stdout)).toHaveProperty('transports');
    }
  }, 120_000);

  it('configuration errors exit 3 with every bad variable named', async () => {
    const r = await cli(['metrics', '--json'], {
      ENABLE_SERVICE_BUS: 'maybe',
      DATABASE_URL: 'nope',
      SWITCHYARD_DEFAULT_TRANSPORT: 'carrier-pigeon',
      SWITCHYARD_API_KEY: 'tiny-key',
    });
    expect(r.code).toBe(3);
    const { error } = lastJson(r.stdout) as {
      error: { code: string; details: { path: string }[] };
    };
    expect(error.code).toBe('CONFIG_ERROR');
    const named = error.details.map((d) => d.path);
    for (const v of [
      'ENABLE_SERVICE_BUS',
      'DATABASE_URL',
      'SWITCHYARD_DEFAULT_TRANSPORT',
      'SWITCHYARD_API_KEY',
    ]) {
      expect(named).toContain(v);
      expect(r.stderr).toContain(v);
    }
    expect(r.stderr + r.stdout).not.toContain('tiny-key'); // values never printed
  }, 60_000);

  it('an unreachable database exits 4', async () => {
    const r = await cli(['metrics', '--json'], {
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
    });
    expect(r.code, r.stderr).toBe(4);
    expect(lastJson(r.stdout)).toMatchObject({ error: { code: expect.stringMatching(/BACKEND/) } });
  }, 60_000);
  // Last in this block: it creates the embedded store, which the tests above expect absent.
  it('schedules: lists with the next fire, pauses, triggers (exit 2 for a bad action)', {
    timeout: 120_000,
  }, async () => {
    const listed = await cli(['schedules', '--json', '--jobs', fixtures]);
    expect(listed.code).toBe(0);
    const [schedule] = lastJson(listed.stdout).schedules as Record<string, unknown>[];
    expect(schedule).toMatchObject({ name: 'hourly-fine', job: 'fine', paused: false });
    expect(Date.parse(schedule!.nextFireAt as string)).toBeGreaterThan(Date.now());
    expect((await cli(['schedules', 'pause', 'hourly-fine', '--jobs', fixtures])).stdout).toContain(
      'paused hourly-fine',
    );
    const table = await cli(['schedules', '--jobs', fixtures]);
    expect(table.stdout).toMatch(/hourly-fine\s+fine\s+0 \* \* \* \*\s+UTC\s+paused/);
    const resumed = await cli(['schedules', 'resume', 'hourly-fine', '--json', '--jobs', fixtures]);
    expect(lastJson(resumed.stdout)).toEqual({ schedule: 'hourly-fine', paused: false });
    const triggered = await cli([
      'schedules',
      'trigger',
      'hourly-fine',
      '--json',
      '--jobs',
      fixtures,
    ]);
    expect(lastJson(triggered.stdout)).toMatchObject({ created: true, status: 'queued' });
    expect((await cli(['schedules', 'explode', '--jobs', fixtures])).code).toBe(2);
  });
});

describe('time on the command line', () => {
  const everySecond = join(root, 'packages/cli/test/fixtures/every-second.ts');

  it('submit --delay / --run-at / --priority: the job waits as scheduled, in its lane', async () => {
    const env = { SWITCHYARD_DATA_DIR: join(dir, 'delayed-data') };
    const delayed = await cli(
      ['submit', 'fine', '--param', 'n=1', '--delay', '600000', '--json', '--jobs', fixtures],
      env,
    );
    expect(delayed.code, delayed.stderr).toBe(0);
    expect(lastJson(delayed.stdout)).toMatchObject({ created: true, status: 'scheduled' });
    const at = '2099-01-01T09:00:00.000Z';
    const later = await cli(
      [
        'submit',
        'fine',
        '--param',
        'n=2',
        '--run-at',
        at,
        '--priority',
        'low',
        '--json',
        '--jobs',
        fixtures,
      ],
      env,
    );
    const jobId = lastJson(later.stdout).jobId as string;
    const status = await cli(['status', jobId, '--json'], env);
    expect(lastJson(status.stdout)).toMatchObject({
      status: 'scheduled',
      runAt: at,
      priority: 'low',
    });
    const human = await cli(['status', jobId], env);
    expect(human.stdout).toMatch(/^priority +low$/m);
  }, 120_000);

  it('the embedded store is one process’s: a second is refused (exit 3), a dead owner’s lock taken over', async () => {
    const dataDir = join(dir, 'locked-data');
    const { child: worker, output, exited } = startCli(['work'], { SWITCHYARD_DATA_DIR: dataDir });
    try {
      // Running (its signal handlers in place) once it says so.
      const deadline = Date.now() + 60_000;
      while (!output.stderr.includes('Ctrl-C stops') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(`${dataDir}.lock`)).toBe(true);
      const second = await cli(['submit', 'hello_world', '--param', 'n=3', '--json'], {
        SWITCHYARD_DATA_DIR: dataDir,
      });
      expect(second.code, second.stderr).toBe(3);
      expect(lastJson(second.stdout)).toMatchObject({
        error: {
          code: 'CONFIG_ERROR',
          message: expect.stringContaining(`open in another process (pid ${worker.pid})`),
        },
      });
    } finally {
      worker.kill('SIGTERM');
    }
    expect(await exited, output.stderr).toBe(0);
    expect(existsSync(`${dataDir}.lock`)).toBe(false);
    // A lock left by a process that is gone (killed) does not keep the folder closed.
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => gone.on('close', r));
    writeFileSync(`${dataDir}.lock`, String(gone.pid));
    const after = await cli(['submit', 'hello_world', '--param', 'n=3', '--json'], {
      SWITCHYARD_DATA_DIR: dataDir,
    });
    expect(after.code, after.stderr).toBe(0);
    const listed = await cli(['jobs', '--json'], { SWITCHYARD_DATA_DIR: dataDir });
    expect(lastJson(listed.stdout).jobs).toEqual([
      expect.objectContaining({ id: lastJson(after.stdout).jobId }),
    ]);
  }, 120_000);

  it('a data folder that is a file, or a jobs module exporting no real job, is a configuration error', async () => {
    const file = join(dir, 'not-a-folder');
    writeFileSync(file, '');
    const asFile = await cli(['metrics', '--json'], { SWITCHYARD_DATA_DIR: file });
    expect(asFile.code).toBe(3);
    expect(lastJson(asFile.stdout)).toMatchObject({
      error: { code: 'CONFIG_ERROR', details: [{ path: 'SWITCHYARD_DATA_DIR' }] },
    });
    const fake = join(dir, 'fake-jobs.mjs');
    writeFileSync(fake, 'export default { name: "fake", stages: [1] };\n');
    const shaped = await cli(['metrics', '--json', '--jobs', fake]);
    expect(shaped.code).toBe(3);
    expect(lastJson(shaped.stdout)).toMatchObject({ error: { code: 'CONFIG_ERROR' } });
  }, 60_000);

  it('SIGTERM while watching drains the worker and exits 130 with the error as JSON', async () => {
    const dataDir = join(dir, 'watch-term');
    const { child, output, exited } = startCli(
      ['submit', 'hello_world', '--param', 'n=4', '--param', 'workMs=60000', '--watch', '--json'],
      { SWITCHYARD_DATA_DIR: dataDir },
    );
    const deadline = Date.now() + 30_000;
    while (!existsSync(`${dataDir}.lock`) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    // The store opened (a few seconds at most), the job submitted and its tasks running.
    await new Promise((r) => setTimeout(r, 12_000));
    child.kill('SIGTERM');
    expect(await exited).toBe(130);
    expect(lastJson(output.stdout)).toMatchObject({ error: { code: 'ABORTED' } });
  }, 90_000);

  it("work evaluates the jobs module's schedules: a fire's job runs with its fire time", async () => {
    const dataDir = join(dir, 'work-data');
    const marks = join(dir, 'marks.txt');
    const {
      child: worker,
      output,
      exited,
    } = startCli(['work', '--jobs', everySecond], {
      SWITCHYARD_DATA_DIR: dataDir,
      MARK_FILE: marks,
    });
    try {
      // The first pass (after the scheduler interval, 5 s) starts the schedule; the next fires.
      const deadline = Date.now() + 90_000;
      while (!existsSync(marks) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 200));
      expect(existsSync(marks), output.stderr).toBe(true);
    } finally {
      worker.kill('SIGTERM');
    }
    expect(await exited, output.stderr).toBe(0);
    const [first] = readFileSync(marks, 'utf8').trim().split('\n');
    // A fire time: a whole second.
    expect(first).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
    const listed = await cli(['schedules', '--json', '--jobs', everySecond], {
      SWITCHYARD_DATA_DIR: dataDir,
    });
    const [schedule] = lastJson(listed.stdout).schedules as Record<string, string>[];
    expect(schedule).toMatchObject({ name: 'every-second', paused: false });
    expect(Date.parse(schedule!.lastFireAt!)).toBeGreaterThanOrEqual(Date.parse(first!));
  }, 150_000);
});

describe('the installed executables', () => {
  const packages = ['packages/cli', 'packages/servicebus-emulator'];

  it('every bin is a committed file, linked by npm at install time (not a path into dist/)', () => {
    for (const pkg of packages) {
      const manifest = JSON.parse(readFileSync(join(root, pkg, 'package.json'), 'utf8')) as {
        bin: Record<string, string>;
        files: string[];
      };
      for (const [name, target] of Object.entries(manifest.bin)) {
        expect(target, name).not.toMatch(/(^|\/)dist\//);
        const file = join(root, pkg, target);
        expect(existsSync(file), file).toBe(true);
        expect(manifest.files, `${pkg} publishes its bin`).toContain(target.split('/')[1]);
        // `npx <name>` in this repository resolves here, never to a registry package.
        const link = join(root, 'node_modules/.bin', name);
        expect(existsSync(link), `${link} (run npm ci)`).toBe(true);
        expect(realpathSync(link)).toBe(realpathSync(file));
      }
    }
  });

  it('the switchyard bin runs the built CLI, or says to build it', async () => {
    const built = existsSync(join(root, 'packages/cli/dist/bin.js'));
    const r = await new Promise<Run>((done, fail) => {
      const child = spawn(join(root, 'node_modules/.bin/switchyard'), ['--help'], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', HOME: dir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => {
        stdout += d;
      });
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.on('error', fail);
      child.on('close', (code) => done({ code, stdout, stderr }));
    });
    if (built) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('Usage: switchyard <command>');
    } else {
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('npm run build');
    }
  }, 60_000);

  it('the default jobs module resolves to JavaScript without the source condition', () => {
    // What the compiled CLI imports when neither --jobs nor SWITCHYARD_JOBS is given.
    const resolved = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "process.stdout.write(import.meta.resolve('@switchyard/example-jobs'))",
      ],
      { cwd: join(root, 'packages/cli'), env: { PATH: process.env.PATH ?? '' } },
    ).toString();
    expect(resolved).toMatch(/jobs\/dist\/index\.js$/);
  });
});
