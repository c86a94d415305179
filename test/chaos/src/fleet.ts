/**
 * Real worker processes: spawn, SIGKILL (the whole process group), restart, stop. Every process the
 * fleet starts is killed when the harness exits, whatever the reason.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { RootLine, SpanLine } from './otel.js';
import type { ChaosEvent } from './recording.js';
import type { WorkerConfig } from './worker.js';

const CHAOS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const WORKER = join(CHAOS_DIR, 'src', 'worker.ts');

export type WorkerLine =
  | ChaosEvent
  | { ev: 'ready'; pid: number }
  | { ev: 'rss'; rss: number; at: number }
  | { ev: 'exit' }
  | SpanLine
  | RootLine;

export interface WorkerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Set once a SIGKILL was sent (the process may still be dying). */
  killed: boolean;
  /** Set once it printed `ready`. */
  ready: boolean;
  readonly exited: Promise<void>;
  /** RSS samples, bytes. */
  readonly rss: number[];
  /** Last lines of stderr, for a failure report. */
  readonly stderr: string[];
  /** Lines of stderr naming a deadlock or serialization failure (`40P01`, `40001`). */
  conflictLines: number;
}

const live = new Set<ChildProcess>();

/**
 * Marks the command line of every worker this module starts (`--owner=<id>`), so a check for
 * leftover workers finds this campaign's only, while other campaigns run beside it.
 */
export const FLEET_OWNER = randomUUID();
let hooksInstalled = false;

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once('exit', () => {
    for (const c of live) signalGroup(c, 'SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const c of live) signalGroup(c, 'SIGKILL');
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/** Starts one worker process with `config`; `onLine` gets each JSON line it prints. */
export function spawnWorker(
  config: WorkerConfig,
  onLine: (worker: WorkerProcess, line: WorkerLine) => void,
): WorkerProcess {
  installExitHooks();
  const child = spawn(
    process.execPath,
    ['--conditions=@switchyard/source', '--import', 'tsx', WORKER, `--owner=${FLEET_OWNER}`],
    {
      cwd: CHAOS_DIR,
      // Its own process group: a SIGKILL reaches anything it started too.
      detached: true,
      env: { ...process.env, CHAOS_WORKER: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  live.add(child);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      live.delete(child);
      resolve();
    });
  });
  const worker: WorkerProcess = {
    name: config.worker,
    child,
    killed: false,
    ready: false,
    exited,
    rss: [],
    stderr: [],
    conflictLines: 0,
  };
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: WorkerLine;
    try {
      line = JSON.parse(text) as WorkerLine;
    } catch {
      return;
    }
    if (line.ev === 'rss') worker.rss.push(line.rss);
    if (line.ev === 'ready') worker.ready = true;
    onLine(worker, line);
  });
  createInterface({ input: child.stderr! }).on('line', (text) => {
    if (/\b(40P01|40001)\b/.test(text)) worker.conflictLines++;
    worker.stderr.push(text);
    if (worker.stderr.length > 50) worker.stderr.shift();
  });
  return worker;
}

/** SIGKILL to the worker's process group; resolves once it is gone. */
export async function killWorker(worker: WorkerProcess): Promise<void> {
  worker.killed = true;
  signalGroup(worker.child, 'SIGKILL');
  await worker.exited;
}

/** SIGTERM (drain), then SIGKILL after `graceMs`. */
export async function stopWorker(worker: WorkerProcess, graceMs = 10_000): Promise<void> {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  signalGroup(worker.child, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(worker.child, 'SIGKILL'), graceMs);
  await worker.exited;
  clearTimeout(timer);
  signalGroup(worker.child, 'SIGKILL');
}

/** Processes this module started that are still alive (for tests: must be 0 at the end). */
export function liveWorkers(): number {
  return live.size;
}
