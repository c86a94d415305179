/**
 * `azure-limits`: the seed's `hello_world` (two stages of n no-op tasks) on both Azure paths under
 * the services' real limits, with a 10 ms round trip, on each path's recommended settings:
 *
 * - Service Bus: the repository's emulator in its `standard` profile (1,000 credits/s per
 *   namespace, `server-busy` with a 2 s penalty beyond), the driver with `tier: 'standard'`
 *   (credit pacing, prefetch 8, 100 tasks per message);
 * - Storage Queues: Azurite behind a throttling proxy (2,000 messages/s per queue, 20,000
 *   requests/s per account, `503 ServerBusy` beyond), the driver with 100 tasks per message and
 *   two task-queue shards.
 *
 * Per path and n: seconds, tasks/s, throttling answers the service gave, billable operations and
 * the estimated cost (also per 1,000,000 tasks). A baseline on the drivers' defaults (one task per
 * message) at n = 1,000 runs in the same process for the ratio.
 * @module
 */

import { randomBytes } from 'node:crypto';
import { QueueServiceClient } from '@azure/storage-queue';
import { memoryStore } from '@switchyard/core';
import type { Transport } from '@switchyard/core/driver';
import { serviceBusTransport } from '@switchyard/driver-servicebus';
import { storageQueueTransport } from '@switchyard/driver-storagequeue';
import { startEmulator } from '@switchyard/servicebus-emulator';
import pLimit from 'p-limit';
import {
  devstoreConnectionString,
  startAzurite,
} from '../../packages/driver-storagequeue/test/azurite.js';
import { round, runHello } from './hello.js';
import { startLatencyProxy } from './lib/latency-proxy.js';
import { startStorageThrottle } from './lib/storage-throttle.js';

/** Arguments of {@link runAzureLimitsBench}. */
export interface AzureLimitsBenchArgs {
  /** Round trip added between client and service, ms. @defaultValue 10 */
  latencyMs?: number;
  /** `hello_world` sizes. @defaultValue [1000, 10000, 100000] */
  n?: number[];
  /** Which parts: the two paths, and `backoff` (sends at a queue's limit, driver vs SDK retry). @defaultValue all */
  paths?: ('servicebus' | 'storagequeue' | 'backoff')[];
  /** Also run the defaults (one task per message) at n = 1,000. @defaultValue true */
  baseline?: boolean;
}

/** One measured run. */
export interface LimitsRun {
  path: 'servicebus' | 'storagequeue';
  settings: 'recommended' | 'defaults';
  n: number;
  tasks: number;
  seconds: number;
  tasksPerSecond: number;
  /** Throttling answers the service (emulator / throttling proxy) gave during the run. */
  throttled: number;
  /** Throttling answers that reached the driver (the rest were retried below it). */
  throttledSeenByDriver: number;
  billableOperations: number;
  operationsPerTask: number;
  costUsd: number;
  costPerMillionTasksUsd: number;
}

/** Tasks per message and shards recommended for Storage Queues (see the driver's README). */
const STORAGE_RECOMMENDED = { packTasks: 100, shards: 2 } as const;

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** Runs the scenario and returns `{ scenario, latencyMs, limits, runs }`. */
export async function runAzureLimitsBench(
  args: AzureLimitsBenchArgs = {},
): Promise<Record<string, unknown>> {
  const latencyMs = args.latencyMs ?? 10;
  const sizes = args.n ?? [1000, 10_000, 100_000];
  const paths = args.paths ?? ['servicebus', 'storagequeue', 'backoff'];
  const runs: LimitsRun[] = [];
  if (paths.includes('servicebus')) runs.push(...(await serviceBusRuns(latencyMs, sizes, args)));
  if (paths.includes('storagequeue')) runs.push(...(await storageRuns(latencyMs, sizes, args)));
  const backoff = paths.includes('backoff') ? await backoffRuns() : undefined;
  return {
    scenario: 'azure-limits',
    latencyMs,
    limits: {
      servicebus:
        'emulator tier standard: 1,000 credits/s per namespace, 2 s penalty, 256 KB, 100 messages per batch',
      storagequeue:
        'throttling proxy: 2,000 messages/s per queue, 20,000 requests/s per account, 503 ServerBusy',
    },
    runs,
    ...(backoff ? { backoff } : {}),
  };
}

/** Sends/s at a queue's limit, and what was lost, for one way of answering 503s. */
export interface BackoffRun {
  client: 'driver' | 'sdk-default-retry';
  messages: number;
  limitPerSecond: number;
  seconds: number;
  sentPerSecond: number;
  /** `sentPerSecond` over the limit. */
  ofLimit: number;
  throttled: number;
  failed: number;
}

/**
 * Sends 300 messages as fast as allowed into a queue limited to 25 messages/s (a scaled-down
 * queue, so the emulator on a loaded machine is not the bottleneck): once through the transport (its own
 * retries, adaptive concurrency), once with the SDK's default retry policy (first retry after
 * 4 s, 4 tries) at the same 64 calls in flight.
 */
async function backoffRuns(): Promise<BackoffRun[]> {
  const messages = 300;
  const limitPerSecond = 25;
  const azurite = await startAzurite();
  const out: BackoffRun[] = [];
  log(`backoff: ${messages} sends into a queue limited to ${limitPerSecond} messages/s`);
  try {
    for (const client of ['driver', 'sdk-default-retry'] as const) {
      const throttle = await startStorageThrottle({
        target: { host: azurite.host, port: azurite.port },
        queueMessagesPerSecond: limitPerSecond,
        burstSeconds: 0.2,
      });
      const connectionString = devstoreConnectionString(throttle.port);
      const queue = `bo-${client === 'driver' ? 'd' : 's'}-${randomBytes(3).toString('hex')}`;
      const bodies = Array.from({ length: messages }, (_, i) => ({ body: `m-${i}` }));
      let failed = 0;
      let seconds: number;
      if (client === 'driver') {
        const transport = storageQueueTransport({ connectionString, queues: { task: queue } });
        await transport.ping(); // creates the queues
        await new Promise((r) => setTimeout(r, 300));
        const t0 = performance.now();
        // One send per message, as many at once as the SDK run below: the transport's own
        // concurrency bound decides what is in flight, and each message counts once.
        const results = await Promise.allSettled(bodies.map((b) => transport.send('task', [b])));
        seconds = (performance.now() - t0) / 1000;
        failed = results.filter((r) => r.status === 'rejected').length;
        await transport.close();
      } else {
        const q = QueueServiceClient.fromConnectionString(connectionString).getQueueClient(queue);
        await q.createIfNotExists();
        await new Promise((r) => setTimeout(r, 300));
        const limit = pLimit(64);
        const t0 = performance.now();
        const results = await Promise.allSettled(
          bodies.map((b) => limit(() => q.sendMessage(Buffer.from(b.body).toString('base64')))),
        );
        seconds = (performance.now() - t0) / 1000;
        failed = results.filter((r) => r.status === 'rejected').length;
      }
      const sent = messages - failed;
      const run: BackoffRun = {
        client,
        messages,
        limitPerSecond,
        seconds: round(seconds),
        sentPerSecond: round(sent / seconds),
        ofLimit: round(sent / seconds / limitPerSecond),
        throttled: throttle.stats().throttled,
        failed,
      };
      out.push(run);
      log(
        `  ${client}: ${sent}/${messages} sent in ${run.seconds} s = ${run.sentPerSecond}/s (${run.ofLimit}x the limit); ${run.throttled} answered 503, ${failed} failed`,
      );
      await throttle.close();
    }
  } finally {
    await azurite.stop();
  }
  return out;
}

async function measure(
  path: LimitsRun['path'],
  settings: LimitsRun['settings'],
  n: number,
  transport: Transport,
  serviceThrottled: () => number,
): Promise<LimitsRun> {
  const before = serviceThrottled();
  const packTasks = transport.limits.packTasks;
  const hello = await runHello(
    n,
    { store: memoryStore(), transport },
    {
      concurrency: 512,
      closeDrivers: false,
      warm: true,
      ...(packTasks ? { batching: { packTasks } } : {}),
    },
  );
  const usage = transport.usage!();
  const cost = transport.estimateCost!(usage);
  await transport.close();
  const run: LimitsRun = {
    path,
    settings,
    n,
    tasks: hello.tasks,
    seconds: hello.seconds,
    tasksPerSecond: hello.tasksPerSecond,
    throttled: serviceThrottled() - before,
    throttledSeenByDriver: usage.throttled,
    billableOperations: usage.billable,
    operationsPerTask: round(usage.billable / hello.tasks, 4),
    costUsd: round(cost.amount, 6),
    costPerMillionTasksUsd: round((cost.amount / hello.tasks) * 1_000_000, 4),
  };
  log(
    `  ${path} ${settings} n=${n}: ${run.tasks} tasks in ${run.seconds} s = ${run.tasksPerSecond} tasks/s; throttled ${run.throttled} (driver saw ${run.throttledSeenByDriver}); ${run.billableOperations} billable ops (${run.operationsPerTask}/task); $${run.costUsd} = $${run.costPerMillionTasksUsd} per 1M tasks`,
  );
  return run;
}

async function serviceBusRuns(
  latencyMs: number,
  sizes: number[],
  args: AzureLimitsBenchArgs,
): Promise<LimitsRun[]> {
  const emulator = await startEmulator({ port: 0, tier: 'standard', lockDurationMs: 60_000 });
  const proxy = await startLatencyProxy({
    target: { host: emulator.host, port: emulator.port },
    latencyMs,
  });
  const connectionString = emulator.connectionString.replace(
    /sb:\/\/[^;/]+/,
    `sb://127.0.0.1:${proxy.port}`,
  );
  let queueNo = 0;
  const fresh = (tier: 'standard' | undefined) => {
    const queues = { stage: `limits-jobs-${++queueNo}`, task: `limits-tasks-${queueNo}` };
    return serviceBusTransport({ connectionString, queues, ...(tier ? { tier } : {}) });
  };
  const throttled = () => emulator.throttleStats().throttled;
  log(`servicebus: emulator tier standard, +${latencyMs} ms round trip`);
  const runs: LimitsRun[] = [];
  try {
    if (args.baseline !== false) {
      // The defaults pace nothing: paced like the tier instead, they would only show the credit
      // budget; unpaced they show what meeting the limit costs.
      runs.push(await measure('servicebus', 'defaults', 1000, fresh(undefined), throttled));
      await new Promise((r) => setTimeout(r, 2500)); // the namespace's penalty runs out
    }
    for (const n of sizes) {
      runs.push(await measure('servicebus', 'recommended', n, fresh('standard'), throttled));
    }
  } finally {
    await proxy.close();
    await emulator.close();
  }
  return runs;
}

async function storageRuns(
  latencyMs: number,
  sizes: number[],
  args: AzureLimitsBenchArgs,
): Promise<LimitsRun[]> {
  const azurite = await startAzurite();
  const throttle = await startStorageThrottle({
    target: { host: azurite.host, port: azurite.port },
  });
  const proxy = await startLatencyProxy({
    target: { host: '127.0.0.1', port: throttle.port },
    latencyMs,
  });
  const connectionString = devstoreConnectionString(proxy.port);
  const prefix = `l-${randomBytes(3).toString('hex')}`;
  let queueNo = 0;
  const fresh = (recommended: boolean) =>
    storageQueueTransport({
      connectionString,
      queues: { stage: `${prefix}-s${++queueNo}`, task: `${prefix}-t${queueNo}` },
      ...(recommended ? STORAGE_RECOMMENDED : {}),
    });
  const throttled = () => throttle.stats().throttled;
  log(
    `storagequeue: Azurite behind a throttling proxy (2,000 msg/s per queue, 20,000 req/s per account), +${latencyMs} ms round trip`,
  );
  const runs: LimitsRun[] = [];
  try {
    if (args.baseline !== false) {
      runs.push(await measure('storagequeue', 'defaults', 1000, fresh(false), throttled));
    }
    for (const n of sizes) {
      runs.push(await measure('storagequeue', 'recommended', n, fresh(true), throttled));
    }
  } finally {
    await proxy.close();
    await throttle.close();
    await azurite.stop();
  }
  return runs;
}
