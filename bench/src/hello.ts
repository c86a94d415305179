import {
  type BatchingOptions,
  createSwitchyard,
  silentLogger,
  type TelemetryOptions,
} from '@switchyard/core';
import type { Store, Transport } from '@switchyard/core/driver';
import { helloWorld } from '@switchyard/example-jobs';

export interface HelloRun {
  n: number;
  /** Task executions: two stages of n. */
  tasks: number;
  seconds: number;
  tasksPerSecond: number;
}

/** Runs `hello_world` (no-op handlers) end to end on the given drivers and times it. */
export async function runHello(
  n: number,
  drivers: { store: Store; transport: Transport },
  options: {
    concurrency?: number;
    workers?: number;
    closeDrivers?: boolean;
    batching?: BatchingOptions;
    /**
     * Measure a running system: connect (`ping`) and start the workers before the clock starts,
     * so connection set-up is not counted against the job.
     */
    warm?: boolean;
    telemetry?: TelemetryOptions;
  } = {},
): Promise<HelloRun> {
  const workers = Math.max(1, options.workers ?? 1);
  const yards = Array.from({ length: workers }, () =>
    createSwitchyard({
      jobs: [helloWorld],
      store: drivers.store,
      transports: [drivers.transport],
      logger: silentLogger,
      reconcile: { intervalMs: 0 },
      ...(options.batching ? { batching: options.batching } : {}),
      ...(options.telemetry ? { telemetry: options.telemetry } : {}),
    }),
  );
  const stop = new AbortController();
  const startWorkers = () =>
    yards.map((y) =>
      y.work({ concurrency: options.concurrency ?? 512, signal: stop.signal, waitMs: 50 }),
    );
  let working: Promise<void>[] | undefined;
  if (options.warm) {
    await drivers.transport.ping?.();
    working = startWorkers();
    await new Promise((r) => setTimeout(r, 200)); // receivers attach
  }
  const started = performance.now();
  const { jobId } = await yards[0]!.submit(
    'hello_world',
    { n, workMs: 0 },
    { idempotencyKey: `bench-${n}-${started}` },
  );
  working ??= startWorkers();
  const job = await yards[0]!.waitFor(jobId, { pollIntervalMs: 20 });
  const seconds = (performance.now() - started) / 1000;
  stop.abort();
  await Promise.all(working);
  if (job.status !== 'succeeded')
    throw new Error(`hello_world n=${n} ended ${job.status}: ${job.error?.message}`);
  if (options.closeDrivers !== false) {
    await drivers.store.close();
    await drivers.transport.close();
  }
  return { n, tasks: 2 * n, seconds: round(seconds), tasksPerSecond: round((2 * n) / seconds) };
}

export const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
