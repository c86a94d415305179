/**
 * Starts Azurite's queue service (only) as a child process on a free loopback port, in memory.
 * A child process, not in process: Azurite is CPU-bound and would otherwise share (and distort)
 * the event loop of the tests and benchmarks that drive it.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Azurite's well-known development account key (public, documented by Microsoft). Note `…SZ6IFsu…`:
 * a copy with `…SZ6IBsu…` circulates and fails with 403 AuthenticationFailed.
 */
export const DEVSTORE_ACCOUNT = 'devstoreaccount1';
export const DEVSTORE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** Connection string for the devstore account on `host:port`. */
export function devstoreConnectionString(
  port: number,
  host = '127.0.0.1',
  key = DEVSTORE_KEY,
): string {
  return `DefaultEndpointsProtocol=http;AccountName=${DEVSTORE_ACCOUNT};AccountKey=${key};QueueEndpoint=http://${host}:${port}/${DEVSTORE_ACCOUNT};`;
}

/** A running Azurite queue service. */
export interface Azurite {
  host: string;
  port: number;
  connectionString: string;
  /** Stops Azurite (SIGTERM to its process group, SIGKILL after 2 s). Idempotent. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Starts Azurite's queue service; rejects (with its output) if it does not listen within `timeoutMs`. */
export async function startAzurite(options: { timeoutMs?: number } = {}): Promise<Azurite> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const require = createRequire(import.meta.url);
  // AZURITE_QUEUE_SCRIPT: another Azurite install (or a bad path, to check the skip/fail paths).
  const main =
    process.env.AZURITE_QUEUE_SCRIPT ?? require.resolve('azurite/dist/src/queue/main.js');
  // Azurite resolves its default --location to the cwd and may touch it; keep that out of the repo.
  const cwd = mkdtempSync(join(tmpdir(), 'azurite-'));
  const child = spawn(
    process.execPath,
    [
      main,
      '--queueHost',
      '127.0.0.1',
      '--queuePort',
      '0',
      '--inMemoryPersistence',
      '--skipApiVersionCheck',
      '--loose',
      '--silent',
      '--disableTelemetry',
    ],
    // detached: its own process group, so stop() can signal the whole group.
    { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort if the host process exits without stop(): never leave an Azurite behind.
    process.once('exit', () => {
      for (const c of running) killGroup(c, 'SIGKILL');
    });
    // Azurite runs in its own process group, so Ctrl-C in a terminal does not reach it, and a
    // signal's default action skips 'exit' handlers: kill it here, then let the signal proceed.
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        for (const c of running) killGroup(c, 'SIGKILL');
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      });
    }
  }

  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => running.delete(child));

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        killGroup(child, 'SIGTERM');
        const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
        // Any grandchildren left in the group go too.
        killGroup(child, 'SIGKILL');
      }
      rmSync(cwd, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`Azurite did not start within ${timeoutMs} ms:\n${output}`)),
        timeoutMs,
      );
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        const match = /listens on https?:\/\/[^:\s]+:(\d+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`Azurite exited with code ${code}:\n${output}`));
      });
    });
    // Keep draining its output so a full pipe never blocks it.
    child.stdout?.resume();
    child.stderr?.resume();
    return {
      host: '127.0.0.1',
      port,
      connectionString: devstoreConnectionString(port),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
