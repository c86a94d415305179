import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(fileURLToPath(import.meta.url), '../../../..');
const cliSource = join(root, 'packages/servicebus-emulator/src/cli.ts');
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

/** Runs the emulator's CLI from source; `onStdout` may stop it. */
function run(
  args: string[],
  onStdout?: (text: string, stop: () => void) => void,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@switchyard/source', '--import', tsx, cliSource, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      onStdout?.(stdout, () => child.kill('SIGTERM'));
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

describe('switchyard-servicebus-emulator CLI', () => {
  it('--help prints the usage and exits 0', async () => {
    for (const flag of ['--help', '-h']) {
      const r = await run([flag]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('Usage: switchyard-servicebus-emulator');
      expect(r.stdout).toContain('--max-delivery-count');
    }
  });

  it('an unknown option or a bad number exits 2 with a message, no stack trace', async () => {
    const unknown = await run(['--bogus']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("'--bogus'");
    expect(unknown.stderr).toContain('Usage:');
    expect(unknown.stderr).not.toMatch(/\n\s+at /);
    const bad = await run(['--port', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--port');
  });

  it('prints its connection string and stops on SIGTERM', async () => {
    const r = await run(['--port', '0'], (text, stop) => {
      if (text.includes('\n')) stop();
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Endpoint=sb:\/\/127\.0\.0\.1:\d+;.*UseDevelopmentEmulator=true/);
  });
});
