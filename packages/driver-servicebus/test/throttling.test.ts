import { setTimeout as sleep } from 'node:timers/promises';
import { isServiceBusError, ServiceBusClient } from '@azure/service-bus';
import type { ReceivedMessage } from '@switchyard/core/driver';

import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { serviceBusTransport } from '../src/index.js';

type Emulator = Awaited<
  ReturnType<typeof import('@switchyard/servicebus-emulator')['startEmulator']>
>;

/** An emulator in the standard profile, scaled down (200 credits/s, 500 ms penalty) to keep the test short. */
async function standardEmulator(): Promise<Emulator | undefined> {
  try {
    const { startEmulator } = await import('@switchyard/servicebus-emulator');
    return await startEmulator({
      port: 0,
      tier: 'standard',
      tierOptions: { creditsPerSecond: 200, throttlePenaltyMs: 500 },
    });
  } catch (err) {
    if (process.env.REQUIRE_SERVICES === '1') throw err;
    return undefined;
  }
}

const emulator = await standardEmulator();
afterAll(async () => {
  await emulator?.close();
});

let queueNo = 0;
const queues = () => ({ stage: `thr-s-${++queueNo}`, task: `thr-t-${queueNo}` });
const bodies = (n: number) => Array.from({ length: n }, (_, i) => ({ body: `m-${i}` }));

async function drain(
  transport: ReturnType<typeof serviceBusTransport>,
  n: number,
): Promise<Set<string>> {
  const seen = new Set<string>();
  // Generous: throttled at 200 credits/s, a loaded machine's receives can take half a minute.
  const deadline = Date.now() + 60_000;
  while (seen.size < n && Date.now() < deadline) {
    const got: ReceivedMessage[] = await transport.receive('task', {
      maxMessages: 50,
      waitMs: 500,
    });
    for (const m of got) seen.add(m.body);
    await transport.settle(got.map((message) => ({ message, action: 'complete' as const })));
  }
  return seen;
}

describe.skipIf(!emulator)('Service Bus standard tier throttling', () => {
  // Each test starts on a namespace whose penalty and period have run out.
  beforeEach(() => new Promise((r) => setTimeout(r, 1100)));

  it('the real client gets ServiceBusy (com.microsoft:server-busy) past the credits', async () => {
    const client = new ServiceBusClient(emulator!.connectionString, {
      retryOptions: { maxRetries: 0 },
    });
    const sender = client.createSender(queues().task);
    try {
      let error: unknown;
      for (let i = 0; i < 10 && !error; i++) {
        await sender.sendMessages(bodies(100)).catch((err: unknown) => {
          error = err;
        });
      }
      expect(isServiceBusError(error) && error.code).toBe('ServiceBusy');
    } finally {
      await client.close();
    }
  });

  it('unpaced (premium), the driver keeps going through throttling: every message arrives once', {
    timeout: 90_000,
  }, async () => {
    // The test before left the namespace refusing for the service's 2 s penalty: start after it.
    await sleep(2500);
    const before = emulator!.throttleStats().throttled;
    const transport = serviceBusTransport({
      connectionString: emulator!.connectionString,
      queues: queues(),
      tier: 'premium',
      retryOptions: { maxRetries: 2, retryDelayInMs: 100 },
    });
    try {
      const n = 500;
      // Five batches at once: 500 credits asked of a namespace that gives 200 a second.
      const all = bodies(n);
      await Promise.all(
        [0, 100, 200, 300, 400].map((i) => transport.send('task', all.slice(i, i + 100))),
      );
      expect(emulator!.throttleStats().throttled).toBeGreaterThan(before);
      const seen = await drain(transport, n);
      expect(seen.size).toBe(n);
      expect(transport.usage().operations.send).toBe(n);
    } finally {
      await transport.close();
    }
  });

  it('paced under the credits (rateLimit), it is never throttled', {
    timeout: 90_000,
  }, async () => {
    // The test before left the namespace refusing for the service's 2 s penalty: start after it.
    await sleep(2500);
    const before = emulator!.throttleStats().throttled;
    const transport = serviceBusTransport({
      connectionString: emulator!.connectionString,
      queues: queues(),
      rateLimit: { creditsPerSecond: 160, burst: 20 },
      prefetchCount: 5,
    });
    try {
      const n = 150;
      for (let i = 0; i < n; i += 50) await transport.send('task', bodies(n).slice(i, i + 50));
      const seen = await drain(transport, n);
      expect(seen.size).toBe(n);
      expect(emulator!.throttleStats().throttled).toBe(before);
      expect(transport.usage().throttled).toBe(0);
      expect(transport.usage().billable).toBeGreaterThanOrEqual(3 * n);
    } finally {
      await transport.close();
    }
  });

  it('without a tier or rateLimit, a transport that is never refused paces nothing', async () => {
    await sleep(2500);
    const before = emulator!.throttleStats().throttled;
    const transport = serviceBusTransport({
      connectionString: emulator!.connectionString,
      queues: queues(),
    });
    try {
      await transport.send('task', bodies(40));
      expect((await drain(transport, 40)).size).toBe(40);
      expect(emulator!.throttleStats().throttled).toBe(before);
      expect(transport.pacing()).toBeUndefined();
    } finally {
      await transport.close();
    }
  });

  it('without a tier or rateLimit, the first ServerBusy engages pacing: every message once, and far fewer refusals than unpaced', {
    timeout: 120_000,
  }, async () => {
    // 1,000 messages in sends of 50, one after another (5 s of the namespace's 200 credits/s),
    // first unpaced (tier premium) for reference, then with the defaults.
    const n = 1000;
    const all = bodies(n);
    const burst = async (transport: ReturnType<typeof serviceBusTransport>) => {
      const start = emulator!.throttleStats().throttled;
      let engaged: number | undefined;
      for (let i = 0; i < n; i += 50) {
        await transport.send('task', all.slice(i, i + 50));
        if (engaged === undefined && transport.pacing())
          engaged = emulator!.throttleStats().throttled;
      }
      return { refused: emulator!.throttleStats().throttled - start, engaged };
    };

    await sleep(2500);
    const unpaced = serviceBusTransport({
      connectionString: emulator!.connectionString,
      queues: queues(),
      tier: 'premium',
    });
    let reference: Awaited<ReturnType<typeof burst>>;
    try {
      reference = await burst(unpaced);
    } finally {
      await unpaced.close();
    }
    // Unpaced, every 200 credits meet a refusal (each resend waits the 2 s asked).
    expect(reference.refused).toBeGreaterThanOrEqual(3);
    expect(reference.engaged).toBeUndefined();

    await sleep(2500);
    // Start as a credit period begins, so the burst is refused within one period and the rate
    // the transport measures is the namespace's.
    await sleep(1010 - (Date.now() % 1000));
    const before = emulator!.throttleStats().throttled;
    const transport = serviceBusTransport({
      connectionString: emulator!.connectionString,
      queues: queues(),
    });
    try {
      const paced = await burst(transport);
      expect(paced.engaged).toBeDefined();
      expect(paced.engaged!).toBeGreaterThan(before);
      expect(transport.usage().throttled).toBeGreaterThanOrEqual(1);
      expect(transport.pacing()?.mode).toBe('adaptive');

      // Every message exactly once (receiving and settling them is paced too).
      const seen: string[] = [];
      const deadline = Date.now() + 60_000;
      while (seen.length < n && Date.now() < deadline) {
        const got = await transport.receive('task', { maxMessages: 50, waitMs: 500 });
        seen.push(...got.map((m) => m.body));
        await transport.settle(got.map((message) => ({ message, action: 'complete' as const })));
      }
      expect(await transport.receive('task', { maxMessages: 50, waitMs: 500 })).toEqual([]);
      expect(seen.length).toBe(n);
      expect(new Set(seen).size).toBe(n);

      // Once engaged, it kept under the credits: the rest of the burst (4 s of credits) and
      // the drain (10 s of them) met at most one more refusal.
      const after = emulator!.throttleStats().throttled - paced.engaged!;
      expect(after).toBeLessThanOrEqual(1);
      expect(after).toBeLessThan(reference.refused);
    } finally {
      await transport.close();
    }
  });
});
