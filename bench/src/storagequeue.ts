/**
 * Storage Queues benchmark: Azurite behind a loopback latency proxy (a cloud-like round trip).
 * Sequential awaited sends vs the transport's batched send, and `hello_world` end to end.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { QueueServiceClient } from '@azure/storage-queue';
import { createSwitchyard, memoryStore, silentLogger } from '@switchyard/core';
import type { Store } from '@switchyard/core/driver';
import { DEFAULT_SEND_CONCURRENCY, storageQueueTransport } from '@switchyard/driver-storagequeue';
import { helloWorld } from '@switchyard/example-jobs';
import pLimit from 'p-limit';
import {
  devstoreConnectionString,
  startAzurite,
} from '../../packages/driver-storagequeue/test/azurite.js';
import { startLatencyProxy } from './lib/latency-proxy.js';

/** Arguments of {@link runStorageQueueBench}. */
export interface StorageQueueBenchArgs {
  /** Injected round-trip latency, ms. */
  latencyMs: number;
  json: boolean;
  /** Messages per send scenario. @defaultValue 2000 */
  n?: number;
  /** `hello_world` n for the end-to-end run (0 skips it). @defaultValue 1000 */
  endToEndN?: number;
  /** Override of the transport's sendConcurrency (for tuning the default). */
  sendConcurrency?: number;
}

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** postgresStore on DATABASE_URL (a throw-away schema) when set, else memoryStore. */
async function storeFor(): Promise<{ store: Store; kind: string; drop: () => Promise<void> }> {
  const url = process.env.DATABASE_URL;
  if (url) {
    try {
      const { postgresStore } = await import('@switchyard/driver-postgres');
      const schema = `bench_sq_${randomBytes(4).toString('hex')}`;
      const store = postgresStore({ connectionString: url, schema });
      const drop = async () => {
        const { default: pg } = await import('pg');
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        } finally {
          await client.end();
        }
      };
      return { store, kind: 'postgres', drop };
    } catch (err) {
      log(`  (postgresStore unavailable, using memoryStore: ${(err as Error).message})`);
    }
  }
  return { store: memoryStore(), kind: 'memory', drop: async () => {} };
}

/**
 * Runs the Storage Queues benchmark and returns
 * `{ scenario, latencyMs, sequentialSendsPerSecond, batchedSendsPerSecond, ratio, endToEndTasksPerSecond }`.
 */
export async function runStorageQueueBench(
  args: StorageQueueBenchArgs,
): Promise<Record<string, unknown>> {
  const n = args.n ?? 2000;
  const endToEndN = args.endToEndN ?? 1000;
  const azurite = await startAzurite();
  const proxy = await startLatencyProxy({
    target: { host: azurite.host, port: azurite.port },
    latencyMs: args.latencyMs,
  });
  const viaProxy = devstoreConnectionString(proxy.port);
  // Cleanup goes straight to Azurite, so it does not pay the injected latency.
  const direct = QueueServiceClient.fromConnectionString(azurite.connectionString);
  const prefix = `b-${randomBytes(4).toString('hex')}`;
  const clear = async () => {
    for await (const q of direct.listQueues({ prefix })) {
      await direct.getQueueClient(q.name).clearMessages();
    }
  };

  try {
    const transport = storageQueueTransport({
      connectionString: viaProxy,
      queues: { stage: `${prefix}-s`, task: `${prefix}-t` },
      ...(args.sendConcurrency ? { sendConcurrency: args.sendConcurrency } : {}),
    });
    const bodies = Array.from({ length: n }, (_, i) =>
      JSON.stringify({ v: 1, kind: 'task', jobId: 'bench', taskId: `t-${i}`, input: { i } }),
    );
    // Warm-up: creates the queues and opens a connection.
    await transport.send('task', [{ body: 'warm-up' }]);
    await clear();

    log(`storagequeue bench: ${n} messages, +${args.latencyMs} ms round trip`);
    let t0 = performance.now();
    for (const body of bodies) await transport.send('task', [{ body }]);
    const sequentialS = (performance.now() - t0) / 1000;
    const sequentialSendsPerSecond = n / sequentialS;
    log(`  sequential: ${sequentialSendsPerSecond.toFixed(0)} msg/s (${sequentialS.toFixed(1)} s)`);
    await clear();

    const { maxBatchMessages, sendConcurrency } = transport.limits;
    const chunks: { body: string }[][] = [];
    for (let i = 0; i < n; i += maxBatchMessages) {
      chunks.push(bodies.slice(i, i + maxBatchMessages).map((body) => ({ body })));
    }
    const chunkLimit = pLimit(sendConcurrency);
    t0 = performance.now();
    await Promise.all(chunks.map((chunk) => chunkLimit(() => transport.send('task', chunk))));
    const batchedS = (performance.now() - t0) / 1000;
    const batchedSendsPerSecond = n / batchedS;
    const ratio = batchedSendsPerSecond / sequentialSendsPerSecond;
    log(
      `  batched:    ${batchedSendsPerSecond.toFixed(0)} msg/s (${batchedS.toFixed(1)} s; ${chunks.length} sends of ≤${maxBatchMessages}, ${sendConcurrency} at once) → ${ratio.toFixed(1)}x`,
    );
    await clear();
    await transport.close();

    let endToEndTasksPerSecond: number | undefined;
    let endToEndStore: string | undefined;
    if (endToEndN > 0) {
      const e2eTransport = storageQueueTransport({
        connectionString: viaProxy,
        queues: { stage: `${prefix}-e2e-s`, task: `${prefix}-e2e-t` },
        ...(args.sendConcurrency ? { sendConcurrency: args.sendConcurrency } : {}),
      });
      const { store, kind, drop } = await storeFor();
      endToEndStore = kind;
      const yard = createSwitchyard({
        jobs: [helloWorld],
        store,
        transports: [e2eTransport],
        logger: silentLogger,
        reconcile: { intervalMs: 0 },
      });
      const controller = new AbortController();
      const workers = [0, 1, 2, 3].map(() =>
        yard.work({ concurrency: 64, signal: controller.signal, waitMs: 200 }),
      );
      try {
        t0 = performance.now();
        const { jobId } = await yard.submit('hello_world', { n: endToEndN, workMs: 0 });
        const view = await yard.waitFor(jobId, { pollIntervalMs: 100 });
        const s = (performance.now() - t0) / 1000;
        const tasks = view.stages.reduce((sum, st) => sum + st.succeeded + st.failed, 0);
        endToEndTasksPerSecond = tasks / s;
        log(
          `  end to end: hello_world n=${endToEndN} ${view.status}, ${tasks} tasks in ${s.toFixed(1)} s → ${endToEndTasksPerSecond.toFixed(0)} tasks/s (store: ${kind})`,
        );
      } finally {
        controller.abort();
        await Promise.all(workers);
        await yard.close();
        await drop();
      }
    }

    const result: Record<string, unknown> = {
      scenario: 'storagequeue',
      latencyMs: args.latencyMs,
      messages: n,
      sequentialSendsPerSecond: Math.round(sequentialSendsPerSecond),
      batchedSendsPerSecond: Math.round(batchedSendsPerSecond),
      ratio: Math.round(ratio * 10) / 10,
      sendConcurrency: args.sendConcurrency ?? DEFAULT_SEND_CONCURRENCY,
      endToEndTasksPerSecond:
        endToEndTasksPerSecond === undefined ? null : Math.round(endToEndTasksPerSecond),
      endToEndStore: endToEndStore ?? null,
    };
    return result;
  } finally {
    await proxy.close();
    await azurite.stop();
  }
}
