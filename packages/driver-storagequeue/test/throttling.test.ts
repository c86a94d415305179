import { QueueServiceClient, RestError } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type StorageThrottle,
  startStorageThrottle,
} from '../../../bench/src/lib/storage-throttle.js';
import { storageQueueTransport } from '../src/index.js';
import { devstoreConnectionString } from './azurite.js';
import { connectionString, deleteQueues, uniqueName } from './helpers.js';

const prefix = uniqueName('thr');

/** Where the shared Azurite listens: what a throttling proxy forwards to. */
function azurite(): { host: string; port: number } {
  const endpoint = new URL(/QueueEndpoint=([^;]+)/.exec(connectionString)![1]!);
  return { host: endpoint.hostname, port: Number(endpoint.port) };
}
let throttle: StorageThrottle;
let viaThrottle: string;

describe.skipIf(!connectionString)(
  'behind a storage account that throttles (503 ServerBusy)',
  () => {
    beforeAll(async () => {
      throttle = await startStorageThrottle({
        target: azurite(),
        queueMessagesPerSecond: 100,
        accountRequestsPerSecond: 1000,
        burstSeconds: 0.5,
      });
      viaThrottle = devstoreConnectionString(throttle.port);
    });
    afterAll(async () => {
      await throttle?.close();
      await deleteQueues(prefix);
    });

    it('answers past the queue rate as Azure Storage does: 503, x-ms-error-code ServerBusy', async () => {
      const queue = QueueServiceClient.fromConnectionString(viaThrottle, {
        retryOptions: { maxTries: 1 },
      }).getQueueClient(`${prefix}-raw`);
      await queue.createIfNotExists();
      const results = await Promise.allSettled(
        Array.from({ length: 400 }, (_, i) => queue.sendMessage(`m${i}`)),
      );
      const refused = results.filter((r) => r.status === 'rejected');
      expect(refused.length).toBeGreaterThan(0);
      const err = (refused[0] as PromiseRejectedResult).reason as RestError;
      expect(err).toBeInstanceOf(RestError);
      expect(err.statusCode).toBe(503);
      expect(err.code).toBe('ServerBusy');
    });

    it('the driver backs off, shrinks its concurrency and delivers every message', async () => {
      const transport = storageQueueTransport({
        connectionString: viaThrottle,
        queues: { stage: `${prefix}-s`, task: `${prefix}-t` },
        sendConcurrency: 64,
      });
      try {
        await transport.send('stage', [{ body: 'warm-up' }]); // creates the queues
        await new Promise((r) => setTimeout(r, 600)); // the queue's burst refills
        const n = 250;
        await transport.send(
          'task',
          Array.from({ length: n }, (_, i) => ({ body: `task-${i}` })),
        );
        const usage = transport.usage();
        expect(usage.throttled).toBeGreaterThan(0);
        expect(throttle.stats().throttled).toBeGreaterThan(0);
        // Every message went out once as far as the service is concerned (no loss).
        expect(usage.operations.putMessage).toBe(n + 1);
        const received = new Set<string>();
        const deadline = Date.now() + 20_000;
        while (received.size < n && Date.now() < deadline) {
          const got = await transport.receive('task', { maxMessages: 32, waitMs: 200 });
          for (const m of got) received.add(m.body);
          await transport.settle(got.map((message) => ({ message, action: 'complete' as const })));
        }
        expect(received.size).toBe(n);
        expect(transport.estimateCost(transport.usage()).amount).toBeGreaterThan(0);
      } finally {
        await transport.close();
      }
    }, 60_000);

    it("retries a gateway's 502 and 504 (a connection it lost to the service) as a server error", async () => {
      const gateway = await startStorageThrottle({ target: azurite(), gatewayErrors: [502, 504] });
      const transport = storageQueueTransport({
        connectionString: devstoreConnectionString(gateway.port),
        queues: { stage: `${prefix}-gs`, task: `${prefix}-gt` },
      });
      try {
        // The first call (creating the queue) meets both answers, then goes through.
        await transport.send('task', [{ body: 'through the gateway' }]);
        expect(gateway.stats().gatewayErrors).toBe(2);
        const got = await transport.receive('task', { maxMessages: 1, waitMs: 2000 });
        expect(got.map((m) => m.body)).toEqual(['through the gateway']);
        await transport.settle(got.map((message) => ({ message, action: 'complete' as const })));
      } finally {
        await transport.close();
        await gateway.close();
      }
    }, 30_000);

    it('keeps a throttled send trying while a backlog drains at the queue rate, failing none', async () => {
      // 160 messages at 20 a second: the last waits about 8 s behind the others, longer than a
      // fixed number of tries would keep trying.
      const slow = await startStorageThrottle({
        target: azurite(),
        queueMessagesPerSecond: 20,
        burstSeconds: 0.2,
      });
      const transport = storageQueueTransport({
        connectionString: devstoreConnectionString(slow.port),
        queues: { stage: `${prefix}-bs`, task: `${prefix}-bt` },
      });
      try {
        await transport.ping(); // creates the queues
        await new Promise((r) => setTimeout(r, 300));
        const n = 160;
        const results = await Promise.allSettled(
          Array.from({ length: n }, (_, i) => transport.send('task', [{ body: `b-${i}` }])),
        );
        expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
        expect(slow.stats().throttled).toBeGreaterThan(n);
        expect(transport.usage().operations.putMessage).toBe(n);
      } finally {
        await transport.close();
        await slow.close();
      }
    }, 90_000);
  },
);
