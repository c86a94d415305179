import { setTimeout as sleep } from 'node:timers/promises';
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServiceBusEmulator, startEmulator } from '../src/index.js';

let emulator: ServiceBusEmulator;
let client: ServiceBusClient;
let n = 0;
const q = (): string => `q${++n}-${Date.now()}`;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0, lockDurationMs: 1000, maxDeliveryCount: 3 });
  client = new ServiceBusClient(emulator.connectionString);
});
afterAll(async () => {
  await client?.close();
  await emulator?.close();
});

describe('send and receive', () => {
  it('round-trips a message and completes it', async () => {
    const queue = q();
    const sender = client.createSender(queue);
    await sender.sendMessages({
      body: 'hello',
      messageId: 'm1',
      applicationProperties: { a: 1, b: 'x' },
    });
    const receiver = client.createReceiver(queue);
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    expect(m?.body).toBe('hello');
    expect(m?.messageId).toBe('m1');
    expect(m?.applicationProperties).toEqual({ a: 1, b: 'x' });
    expect(m?.deliveryCount).toBe(0);
    expect(m?.sequenceNumber?.toNumber()).toBe(1);
    expect(m?.enqueuedTimeUtc).toBeInstanceOf(Date);
    expect(m?.lockedUntilUtc?.getTime()).toBeGreaterThan(Date.now());
    expect(emulator.queueStats(queue)).toMatchObject({ active: 0, locked: 1 });
    await receiver.completeMessage(m!);
    expect(emulator.queueStats(queue)).toEqual({
      active: 0,
      scheduled: 0,
      locked: 0,
      deadLettered: 0,
    });
    await receiver.close();
    await sender.close();
  });

  it('sends a batch of 500 and receives them all', async () => {
    const queue = q();
    emulator.configureQueue(queue, { lockDurationMs: 30_000 });
    const sender = client.createSender(queue);
    let batch = await sender.createMessageBatch();
    for (let i = 0; i < 500; i++) {
      const msg = { body: { i }, messageId: `id-${i}` };
      if (!batch.tryAddMessage(msg)) {
        await sender.sendMessages(batch);
        batch = await sender.createMessageBatch();
        expect(batch.tryAddMessage(msg)).toBe(true);
      }
    }
    await sender.sendMessages(batch);
    expect(emulator.queueStats(queue).active).toBe(500);
    const receiver = client.createReceiver(queue);
    const seen = new Set<number>();
    while (seen.size < 500) {
      const got = await receiver.receiveMessages(200, { maxWaitTimeInMs: 1000 });
      expect(got.length).toBeGreaterThan(0);
      await Promise.all(got.map((m) => receiver.completeMessage(m)));
      for (const m of got) seen.add((m.body as { i: number }).i);
    }
    expect(emulator.queueStats(queue).active).toBe(0);
    await receiver.close();
    await sender.close();
  });
});

describe('settlement', () => {
  it('abandon redelivers with deliveryCount + 1', async () => {
    const queue = q();
    const sender = client.createSender(queue);
    await sender.sendMessages({ body: 'a' });
    const receiver = client.createReceiver(queue);
    const [m1] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    await receiver.abandonMessage(m1!);
    const [m2] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    expect(m2?.deliveryCount).toBe(1);
    expect(m2?.sequenceNumber?.toNumber()).toBe(m1?.sequenceNumber?.toNumber());
    await receiver.completeMessage(m2!);
    await receiver.close();
    await sender.close();
  });

  it('an expired lock redelivers the message and its settlement fails with lock lost', async () => {
    const queue = q();
    const sender = client.createSender(queue);
    await sender.sendMessages({ body: 'x' });
    // No auto lock renewal: the SDK would otherwise keep the lock alive.
    const receiver = client.createReceiver(queue, { maxAutoLockRenewalDurationInMs: 0 });
    const [m1] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    await sleep(1300);
    const [m2] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    expect(m2?.deliveryCount).toBe(1);
    await expect(receiver.completeMessage(m1!)).rejects.toMatchObject({ code: 'MessageLockLost' });
    await receiver.completeMessage(m2!);
    await receiver.close();
    await sender.close();
  });

  it('renewMessageLock keeps the lock past its duration', async () => {
    const queue = q();
    const sender = client.createSender(queue);
    await sender.sendMessages({ body: 'x' });
    const receiver = client.createReceiver(queue, { maxAutoLockRenewalDurationInMs: 0 });
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    for (let i = 0; i < 3; i++) {
      await sleep(600);
      const until = await receiver.renewMessageLock(m!);
      expect(until.getTime()).toBeGreaterThan(Date.now() + 500);
    }
    expect(emulator.queueStats(queue)).toMatchObject({ active: 0, locked: 1 });
    await receiver.completeMessage(m!);
    await receiver.close();
    await sender.close();
  });

  it('exceeding maxDeliveryCount dead-letters with MaxDeliveryCountExceeded', async () => {
    const queue = q();
    const sender = client.createSender(queue);
    await sender.sendMessages({ body: 'poison' });
    const receiver = client.createReceiver(queue);
    for (let i = 0; i < 3; i++) {
      const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
      expect(m?.deliveryCount).toBe(i);
      await receiver.abandonMessage(m!);
    }
    expect(emulator.queueStats(queue)).toMatchObject({ active: 0, deadLettered: 1 });
    const dlq = client.createReceiver(queue, { subQueueType: 'deadLetter' });
    const [d] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    expect(d?.body).toBe('poison');
    expect(d?.deadLetterReason).toBe('MaxDeliveryCountExceeded');
    await dlq.completeMessage(d!);
    expect(emulator.queueStats(queue).deadLettered).toBe(0);
    await dlq.close();
    await receiver.close();
    await sender.close();
  });

  it('deadLetterMessage stores reason and description on the DLQ message', async () => {
    const queue = q();
    const sender = client.createSender(queue);
    await sender.sendMessages({
      body: 'bad',
      messageId: 'dl-1',
      applicationProperties: { k: 'v' },
    });
    const receiver = client.createReceiver(queue);
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    await receiver.deadLetterMessage(m!, {
      deadLetterReason: 'Invalid',
      deadLetterErrorDescription: 'cannot parse',
    });
    const dlq = client.createReceiver(queue, { subQueueType: 'deadLetter' });
    const [d] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    expect(d?.messageId).toBe('dl-1');
    expect(d?.deadLetterReason).toBe('Invalid');
    expect(d?.deadLetterErrorDescription).toBe('cannot parse');
    expect(d?.applicationProperties).toMatchObject({
      k: 'v',
      DeadLetterReason: 'Invalid',
      DeadLetterErrorDescription: 'cannot parse',
    });
    await dlq.completeMessage(d!);
    await dlq.close();
    await receiver.close();
    await sender.close();
  });

  it('defer, receiveDeferredMessages, complete over $management', async () => {
    const queue = q();
    const sender = client.createSender(queue);
    await sender.sendMessages({ body: 'later' });
    const receiver = client.createReceiver(queue);
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    await receiver.deferMessage(m!);
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 200 })).toEqual([]);
    const [d] = await receiver.receiveDeferredMessages(m!.sequenceNumber!);
    expect(d?.body).toBe('later');
    expect(d?.state).toBe('deferred');
    await receiver.completeMessage(d!);
    expect(emulator.queueStats(queue).active).toBe(0);
    await receiver.close();
    await sender.close();
  });
});

describe('scheduling and peek', () => {
  it('scheduleMessages delivers after the time; cancelScheduledMessages removes', async () => {
    const queue = q();
    const sender = client.createSender(queue);
    const at = new Date(Date.now() + 700);
    const [keep, cancel] = await sender.scheduleMessages(
      [{ body: 'keep' }, { body: 'cancel' }],
      at,
    );
    expect(emulator.queueStats(queue).scheduled).toBe(2);
    await sender.cancelScheduledMessages(cancel!);
    expect(emulator.queueStats(queue).scheduled).toBe(1);
    const receiver = client.createReceiver(queue);
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 200 })).toEqual([]);
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    expect(Date.now()).toBeGreaterThanOrEqual(at.getTime());
    expect(m?.body).toBe('keep');
    expect(m?.sequenceNumber?.toNumber()).toBe(keep?.toNumber());
    await receiver.completeMessage(m!);
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toEqual([]);
    await receiver.close();
    await sender.close();
  });

  it('scheduledEnqueueTimeUtc on a sent message delays it', async () => {
    const queue = q();
    const sender = client.createSender(queue);
    await sender.sendMessages({ body: 's', scheduledEnqueueTimeUtc: new Date(Date.now() + 500) });
    expect(emulator.queueStats(queue).scheduled).toBe(1);
    const receiver = client.createReceiver(queue, { receiveMode: 'receiveAndDelete' });
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    expect(m?.body).toBe('s');
    await receiver.close();
    await sender.close();
  });

  it('peekMessages returns messages without locking them', async () => {
    const queue = q();
    const sender = client.createSender(queue);
    await sender.sendMessages([{ body: 1 }, { body: 2 }, { body: 3 }]);
    const receiver = client.createReceiver(queue);
    const peeked = await receiver.peekMessages(2);
    expect(peeked.map((m) => m.body)).toEqual([1, 2]);
    const next = await receiver.peekMessages(5);
    expect(next.map((m) => m.body)).toEqual([3]);
    expect(emulator.queueStats(queue)).toMatchObject({ active: 3, locked: 0 });
    await receiver.close();
    await sender.close();
  });
});

describe('receive modes', () => {
  it('receiveAndDelete removes messages on delivery', async () => {
    const queue = q();
    const sender = client.createSender(queue);
    await sender.sendMessages([{ body: 'a' }, { body: 'b' }]);
    const receiver = client.createReceiver(queue, { receiveMode: 'receiveAndDelete' });
    const got: ServiceBusReceivedMessage[] = [];
    while (got.length < 2)
      got.push(...(await receiver.receiveMessages(2, { maxWaitTimeInMs: 1000 })));
    expect(got.map((m) => m.body).sort()).toEqual(['a', 'b']);
    expect(emulator.queueStats(queue)).toEqual({
      active: 0,
      scheduled: 0,
      locked: 0,
      deadLettered: 0,
    });
    await receiver.close();
    await sender.close();
  });

  it('subscribe with maxConcurrentCalls processes everything', async () => {
    const queue = q();
    emulator.configureQueue(queue, { lockDurationMs: 30_000 });
    const sender = client.createSender(queue);
    await sender.sendMessages(Array.from({ length: 50 }, (_, i) => ({ body: i })));
    const receiver = client.createReceiver(queue);
    const seen = new Set<number>();
    let inFlight = 0;
    let maxInFlight = 0;
    await new Promise<void>((resolve, reject) => {
      const sub = receiver.subscribe(
        {
          processMessage: async (m) => {
            inFlight++;
            maxInFlight = Math.max(maxInFlight, inFlight);
            await sleep(5);
            seen.add(m.body as number);
            inFlight--;
            if (seen.size === 50) void sub.close().then(resolve);
          },
          processError: async (args) => reject(args.error),
        },
        { maxConcurrentCalls: 5 },
      );
    });
    expect(maxInFlight).toBeLessThanOrEqual(5);
    expect(maxInFlight).toBeGreaterThan(1);
    await sleep(50);
    expect(emulator.queueStats(queue).active + emulator.queueStats(queue).locked).toBe(0);
    await receiver.close();
    await sender.close();
  });
});
