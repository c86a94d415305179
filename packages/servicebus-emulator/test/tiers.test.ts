import { isServiceBusError, ServiceBusClient } from '@azure/service-bus';
import { afterEach, describe, expect, it } from 'vitest';
import { type ServiceBusEmulator, startEmulator } from '../src/index.js';

let emulator: ServiceBusEmulator | undefined;
let client: ServiceBusClient | undefined;
afterEach(async () => {
  await client?.close();
  await emulator?.close();
  client = undefined;
  emulator = undefined;
});

/** A client that surfaces the first error instead of retrying it. */
async function open(options: Parameters<typeof startEmulator>[0]): Promise<ServiceBusClient> {
  emulator = await startEmulator({ port: 0, ...options });
  client = new ServiceBusClient(emulator.connectionString, { retryOptions: { maxRetries: 0 } });
  return client;
}

/** Waits for the start of a one-second credit period, so a test's operations share one period. */
const atPeriodStart = () => new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 10));

const messages = (n: number) => Array.from({ length: n }, (_, i) => ({ body: `m${i}` }));

describe('standard tier', () => {
  it('refuses sends beyond the credits with com.microsoft:server-busy (SDK code ServiceBusy)', async () => {
    const sb = await open({ tier: 'standard', tierOptions: { creditsPerSecond: 50 } });
    const sender = sb.createSender('q');
    await sender.createMessageBatch(); // opens the link before the period starts
    await atPeriodStart();
    let error: unknown;
    let sent = 0;
    try {
      for (let i = 0; i < 10; i++) {
        await sender.sendMessages(messages(10));
        sent += 10;
      }
    } catch (err) {
      error = err;
    }
    expect(sent).toBe(50);
    expect(isServiceBusError(error)).toBe(true);
    expect((error as { code?: string }).code).toBe('ServiceBusy');
    expect((error as Error).message).toContain('being throttled');
    expect(emulator!.throttleStats()).toMatchObject({ credits: 50, throttled: 1 });
    expect(emulator!.queueStats('q').active).toBe(50);
  });

  it('keeps refusing for the penalty after the credits ran out, then admits again', async () => {
    const sb = await open({
      tier: 'standard',
      tierOptions: { creditsPerSecond: 10, throttlePenaltyMs: 1500 },
    });
    const sender = sb.createSender('q');
    await sender.createMessageBatch();
    await atPeriodStart();
    await sender.sendMessages(messages(10));
    await expect(sender.sendMessages(messages(1))).rejects.toMatchObject({ code: 'ServiceBusy' });
    await new Promise((r) => setTimeout(r, 1100)); // a new period, but still within the penalty
    await expect(sender.sendMessages(messages(1))).rejects.toMatchObject({ code: 'ServiceBusy' });
    await new Promise((r) => setTimeout(r, 1600));
    await sender.sendMessages(messages(1));
    expect(emulator!.queueStats('q').active).toBe(11);
  });

  it('delays deliveries beyond the credits instead of failing the receive', async () => {
    const sb = await open({ tier: 'standard', tierOptions: { creditsPerSecond: 40 } });
    const receiver = sb.createReceiver('q', { receiveMode: 'receiveAndDelete' });
    await sb.createSender('q').createMessageBatch();
    await atPeriodStart();
    await sb.createSender('q').sendMessages(messages(30)); // 30 credits
    const first = await receiver.receiveMessages(30, { maxWaitTimeInMs: 300 });
    expect(first.length).toBe(10); // the 10 credits left in this period
    expect(emulator!.throttleStats().deliveriesDelayed).toBeGreaterThan(0);
    const rest = [];
    while (rest.length < 20)
      rest.push(...(await receiver.receiveMessages(20, { maxWaitTimeInMs: 2000 })));
    expect(rest.length).toBe(20);
  });

  it('advertises 256 KB and refuses a batch of more than 100 messages', async () => {
    const sb = await open({ tier: 'standard' });
    const sender = sb.createSender('q');
    const batch = await sender.createMessageBatch();
    expect(batch.maxSizeInBytes).toBe(256 * 1024);
    const big = await sender.createMessageBatch();
    for (let i = 0; i < 101; i++) expect(big.tryAddMessage({ body: `m${i}` })).toBe(true);
    await expect(sender.sendMessages(big)).rejects.toMatchObject({ code: 'QuotaExceeded' });
  });

  it('refuses a single message over 256 KB, as the service does', async () => {
    const sb = await open({ tier: 'standard' });
    const sender = sb.createSender('q');
    await expect(sender.sendMessages({ body: Buffer.alloc(300 * 1024) })).rejects.toMatchObject({
      code: 'MessageSizeExceeded',
    });
    await sender.sendMessages({ body: Buffer.alloc(200 * 1024) });
  });
});

describe('premium tier', () => {
  it('advertises 1 MB and throttles only beyond its messaging units', async () => {
    const sb = await open({
      tier: 'premium',
      tierOptions: { messagingUnits: 1, operationsPerMessagingUnit: 200 },
    });
    const sender = sb.createSender('q');
    expect((await sender.createMessageBatch()).maxSizeInBytes).toBe(1024 * 1024);
    await atPeriodStart();
    await sender.sendMessages(messages(100));
    await sender.sendMessages(messages(100));
    await expect(sender.sendMessages(messages(1))).rejects.toMatchObject({ code: 'ServiceBusy' });
  });
});
