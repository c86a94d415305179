import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ServiceBusClient } from '@azure/service-bus';
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
    const tier = await run(['--tier', 'basic']);
    expect(tier.code).toBe(2);
    expect(tier.stderr).toContain(
      "--tier must be one of unlimited, standard, premium, got 'basic'",
    );
    const credits = await run(['--tier', 'standard', '--credits-per-second', '0']);
    expect(credits.code).toBe(2);
    expect(credits.stderr).toContain('--credits-per-second must be a positive integer');
  });

  it('prints its connection string and stops on SIGTERM', async () => {
    const r = await run(['--port', '0'], (text, stop) => {
      if (text.includes('\n')) stop();
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Endpoint=sb:\/\/127\.0\.0\.1:\d+;.*UseDevelopmentEmulator=true/);
  });

  it("--tier standard advertises the standard tier's 256 KB batches", async () => {
    let connectionString = '';
    let outcome: unknown;
    const r = await run(['--port', '0', '--tier', 'standard'], (text, stop) => {
      if (connectionString || !text.includes('\n')) return;
      connectionString = text.trim();
      void (async () => {
        const client = new ServiceBusClient(connectionString);
        try {
          const batch = await client.createSender('q').createMessageBatch();
          outcome = batch.maxSizeInBytes;
        } catch (err) {
          outcome = err;
        } finally {
          await client.close();
          stop();
        }
      })();
    });
    expect(r.code, r.stderr).toBe(0);
    expect(outcome).toBe(256 * 1024);
  });
});
