/**
 * Service Bus benchmark: the in-repo emulator behind a loopback latency proxy (a cloud-like round
 * trip), driven by the real `@azure/service-bus` client through `serviceBusTransport`.
 *
 * - one awaited `send` per message vs the batched path (batches of 100, sent concurrently);
 * - `hello_world` end to end on the memory store (to isolate the transport).
 * @module
 */
import { memoryStore } from '@switchyard/core';
import type { OutgoingMessage } from '@switchyard/core/driver';
import { serviceBusTransport } from '@switchyard/driver-servicebus';
import { startEmulator } from '@switchyard/servicebus-emulator';
import pLimit from 'p-limit';
import { type HelloRun, round, runHello } from './hello.js';
import { startLatencyProxy } from './lib/latency-proxy.js';

/** Arguments of {@link runServiceBusBench}. */
export interface ServiceBusBenchArgs {
  /** Injected round-trip latency, ms. */
  latencyMs: number;
  json: boolean;
  /** `hello_world` sizes for the end-to-end runs. @defaultValue [1000, 10000, 100000] */
  n?: number[];
}

const MESSAGES = 10_000;
const BATCH = 100;
/** Single sends stop after this long (10,000 awaited round trips at 20 ms would take 200 s); the rate is what counts. */
const SINGLE_BUDGET_MS = 15_000;
const BATCH_CONCURRENCY = 16;

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

/**
 * Runs the Service Bus scenario at one latency and returns
 * `{ scenario, latencyMs, singleSendsPerSecond, batchedSendsPerSecond, ratio, runs }`.
 */
export async function runServiceBusBench(
  args: ServiceBusBenchArgs,
): Promise<Record<string, unknown>> {
  const sizes = args.n ?? [1000, 10_000, 100_000];
  const emulator = await startEmulator({ port: 0, lockDurationMs: 60_000 });
  const proxy = await startLatencyProxy({
    target: { host: emulator.host, port: emulator.port },
    latencyMs: args.latencyMs,
  });
  // Same credentials as the emulator's, pointed at the proxy.
  const connectionString = emulator.connectionString.replace(
    /sb:\/\/[^;/]+/,
    `sb://127.0.0.1:${proxy.port}`,
  );
  let queueNo = 0;
  const fresh = () => {
    const queues = { stage: `bench-jobs-${++queueNo}`, task: `bench-tasks-${queueNo}` };
    emulator.configureQueue(queues.stage, { lockDurationMs: 60_000 });
    emulator.configureQueue(queues.task, { lockDurationMs: 60_000 });
    return serviceBusTransport({ connectionString, queues, sendConcurrency: BATCH_CONCURRENCY });
  };
  const body = (i: number) =>
    JSON.stringify({ v: 1, kind: 'task', jobId: 'bench', stage: 0, index: i, input: { i } });

  try {
    log(
      `servicebus: emulator on ${emulator.host}:${emulator.port}, proxy adds ${args.latencyMs} ms round trip`,
    );

    // One awaited send per message (the seed's path).
    const single = fresh();
    await single.send('task', [{ body: 'warm-up' }]); // opens the connection and the sender link
    let sent = 0;
    const t0 = performance.now();
    while (sent < MESSAGES && performance.now() - t0 < SINGLE_BUDGET_MS) {
      await single.send('task', [{ body: body(sent), messageId: `s-${sent}` }]);
      sent++;
    }
    const singleSeconds = (performance.now() - t0) / 1000;
    const singleSendsPerSecond = round(sent / singleSeconds);
    await single.close();
    log(
      `  single sends:  ${sent} messages in ${round(singleSeconds)} s = ${singleSendsPerSecond}/s`,
    );

    // The batched path: batches of 100, concurrently.
    const batched = fresh();
    await batched.send('task', [{ body: 'warm-up' }]);
    const batches: OutgoingMessage[][] = [];
    for (let i = 0; i < MESSAGES; i += BATCH) {
      batches.push(
        Array.from({ length: Math.min(BATCH, MESSAGES - i) }, (_, k) => ({
          body: body(i + k),
          messageId: `b-${i + k}`,
        })),
      );
    }
    const limit = pLimit(BATCH_CONCURRENCY);
    const t1 = performance.now();
    await Promise.all(batches.map((b) => limit(() => batched.send('task', b))));
    const batchedSeconds = (performance.now() - t1) / 1000;
    const batchedSendsPerSecond = round(MESSAGES / batchedSeconds);
    await batched.close();
    const ratio = round(batchedSendsPerSecond / singleSendsPerSecond, 1);
    log(
      `  batched sends: ${MESSAGES} messages in ${round(batchedSeconds)} s = ${batchedSendsPerSecond}/s (${ratio}x single)`,
    );

    const runs: HelloRun[] = [];
    for (const n of sizes) {
      const run = await runHello(
        n,
        { store: memoryStore(), transport: fresh() },
        { concurrency: 512 },
      );
      runs.push(run);
      log(
        `  hello_world n=${n}: ${run.tasks} tasks in ${run.seconds} s = ${run.tasksPerSecond} tasks/s`,
      );
    }
    if (runs.length >= 2) {
      const [a, b] = runs.slice(-2);
      log(
        `  per-task cost n=${b!.n} vs n=${a!.n}: ${round(a!.tasksPerSecond / b!.tasksPerSecond)}x`,
      );
    }
    return {
      scenario: 'servicebus',
      latencyMs: args.latencyMs,
      singleSends: sent,
      singleSendsPerSecond,
      batchedSends: MESSAGES,
      batchedSendsPerSecond,
      ratio,
      runs,
    };
  } finally {
    await proxy.close();
    await emulator.close();
  }
}
