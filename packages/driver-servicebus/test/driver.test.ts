import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import type { SecretSource } from '@switchyard/core';
import type { Settlement, Transport } from '@switchyard/core/driver';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MessageTooLargeError, serviceBusTransport } from '../src/index.js';
import { emulatorTransport, freshQueues, receiveN, tryStartEmulator } from './emulator.js';

const emulator = await tryStartEmulator();
afterAll(async () => {
  await emulator?.close();
});

const open: Transport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

function setup(settings?: { lockDurationMs?: number; maxDeliveryCount?: number }) {
  const made = emulatorTransport(emulator!, {}, settings);
  open.push(made.transport);
  return made;
}

describe.skipIf(!emulator)('serviceBusTransport on the emulator', () => {
  it('applies many mixed settlements in one call, each as asked (the rhea merge hazard)', {
    timeout: 60_000,
  }, async () => {
    const { transport, queues } = setup({ lockDurationMs: 5000 });
    const n = 300;
    await transport.send(
      'task',
      Array.from({ length: n }, (_, i) => ({ body: `m-${i}`, messageId: `id-${i}` })).slice(0, 100),
    );
    await transport.send(
      'task',
      Array.from({ length: n }, (_, i) => ({ body: `m-${i}`, messageId: `id-${i}` })).slice(
        100,
        200,
      ),
    );
    await transport.send(
      'task',
      Array.from({ length: n }, (_, i) => ({ body: `m-${i}`, messageId: `id-${i}` })).slice(200),
    );
    const got = await receiveN(transport, 'task', n, 15_000);
    expect(got).toHaveLength(n);
    // Interleave outcomes in delivery order so adjacent deliveries differ — what rhea would merge.
    const kinds = ['complete', 'retry', 'deadLetterA', 'complete', 'deadLetterB'] as const;
    const expected = {
      retried: new Set<string>(),
      deadA: new Set<string>(),
      deadB: new Set<string>(),
    };
    const settlements: Settlement[] = got.map((message, i) => {
      const kind = kinds[i % kinds.length]!;
      if (kind === 'retry') {
        expected.retried.add(message.body);
        return { message, action: 'retry', delayMs: 0 };
      }
      if (kind === 'deadLetterA') {
        expected.deadA.add(message.body);
        return { message, action: 'deadLetter', reason: 'ReasonA', description: 'first' };
      }
      if (kind === 'deadLetterB') {
        expected.deadB.add(message.body);
        return { message, action: 'deadLetter', reason: 'ReasonB' };
      }
      return { message, action: 'complete' };
    });
    await transport.settle(settlements);

    const back = await receiveN(transport, 'task', expected.retried.size, 10_000);
    expect(new Set(back.map((m) => m.body))).toEqual(expected.retried);
    expect(back.every((m) => m.deliveryCount === 2)).toBe(true);
    await transport.settle(back.map((message) => ({ message, action: 'complete' as const })));

    const dead = await transport.listDeadLetters('task', { limit: 1000 });
    expect(new Set(dead.filter((d) => d.reason === 'ReasonA').map((d) => d.body))).toEqual(
      expected.deadA,
    );
    expect(new Set(dead.filter((d) => d.reason === 'ReasonB').map((d) => d.body))).toEqual(
      expected.deadB,
    );
    expect(dead.find((d) => d.reason === 'ReasonA')?.description).toBe('first');
    expect(dead).toHaveLength(expected.deadA.size + expected.deadB.size);
    expect(await receiveN(transport, 'task', 1, 1500)).toEqual([]);
    expect(emulator!.queueStats(queues.task)).toMatchObject({
      active: 0,
      locked: 0,
      deadLettered: dead.length,
    });
  });

  it('control: the same interleaving through the raw SDK with Promise.all loses abandons', {
    timeout: 60_000,
  }, async () => {
    // Why the driver serialises: on this stack (rhea under @azure/service-bus) adjacent
    // dispositions settled in one tick share a frame with the first outcome.
    const queues = freshQueues(emulator!, { lockDurationMs: 5000 });
    const client = new ServiceBusClient(emulator!.connectionString);
    try {
      const sender = client.createSender(queues.task);
      await sender.sendMessages(
        Array.from({ length: 50 }, (_, i) => ({ body: `r-${i}`, messageId: `r-${i}` })),
      );
      const receiver = client.createReceiver(queues.task, { maxAutoLockRenewalDurationInMs: 0 });
      const got: ServiceBusReceivedMessage[] = [];
      while (got.length < 50)
        got.push(...(await receiver.receiveMessages(50 - got.length, { maxWaitTimeInMs: 1000 })));
      await Promise.all(
        got.map((m, i) => (i % 2 === 0 ? receiver.completeMessage(m) : receiver.abandonMessage(m))),
      );
      const back: ServiceBusReceivedMessage[] = [];
      for (let i = 0; i < 5; i++)
        back.push(...(await receiver.receiveMessages(25, { maxWaitTimeInMs: 300 })));
      // 25 were abandoned; (nearly) all of them were completed instead.
      expect(back.length).toBeLessThan(25);
      await receiver.close();
      await sender.close();
    } finally {
      await client.close();
    }
  });

  it('applies mixed settlements from many concurrent settle calls (workers settling at once)', {
    timeout: 60_000,
  }, async () => {
    const { transport } = setup({ lockDurationMs: 5000 });
    await transport.send(
      'task',
      Array.from({ length: 100 }, (_, i) => ({ body: `c-${i}` })),
    );
    const got = await receiveN(transport, 'task', 100, 10_000);
    const abandoned = new Set<string>();
    await Promise.all(
      got.map((message, i) => {
        if (i % 3 === 1) {
          abandoned.add(message.body);
          return transport.settle([{ message, action: 'retry', delayMs: 0 }]);
        }
        return transport.settle([{ message, action: 'complete' }]);
      }),
    );
    const back = await receiveN(transport, 'task', abandoned.size, 10_000);
    expect(new Set(back.map((m) => m.body))).toEqual(abandoned);
    await transport.settle(back.map((message) => ({ message, action: 'complete' as const })));
    expect(await receiveN(transport, 'task', 1, 1500)).toEqual([]);
  });

  it('retries with real backoff: a scheduled copy, invisible until due, delivery count carried', {
    timeout: 30_000,
  }, async () => {
    const { transport, queues } = setup();
    await transport.send('task', [{ body: 'later', messageId: 'stable-id' }]);
    const [first] = await receiveN(transport, 'task', 1);
    expect(first?.deliveryCount).toBe(1);
    const settledAt = Date.now();
    await transport.settle([{ message: first!, action: 'retry', delayMs: 2000 }]);
    expect(emulator!.queueStats(queues.task)).toMatchObject({ scheduled: 1, locked: 0 });
    expect(await receiveN(transport, 'task', 1, 1500)).toEqual([]);
    const [again] = await receiveN(transport, 'task', 1, 4000);
    expect(Date.now() - settledAt).toBeGreaterThanOrEqual(1900);
    expect(again?.body).toBe('later');
    expect(again?.id).toBe('stable-id');
    expect(again?.deliveryCount).toBe(2);
    await transport.settle([{ message: again!, action: 'complete' }]);
  });

  it('ignores a delivery count a sender wrote that this driver could not have written', {
    timeout: 30_000,
  }, async () => {
    const { transport, queues } = setup();
    const client = new ServiceBusClient(emulator!.connectionString);
    try {
      const sender = client.createSender(queues.task);
      const counts = [Number.POSITIVE_INFINITY, -1000, 0.5, Number.NaN, 4];
      await sender.sendMessages(
        counts.map((count, i) => ({
          body: `odd-${i}`,
          messageId: `odd-${i}`,
          applicationProperties: { 'sy-delivery-count': count },
        })),
      );
      await sender.close();
      const got = await receiveN(transport, 'task', counts.length);
      // (A string the SDK sends as an AMQP value is read back as its JSON text.)
      const byBody = new Map(got.map((m) => [JSON.parse(m.body) as string, m.deliveryCount]));
      // Only the whole, positive count (4 earlier deliveries) is carried: 5 now.
      expect(counts.map((_, i) => byBody.get(`odd-${i}`))).toEqual([1, 1, 1, 1, 5]);
      await transport.settle(got.map((message) => ({ message, action: 'complete' as const })));
    } finally {
      await client.close();
    }
  });

  it('dead-letters with the reason visible, and replays from the dead-letter queue', {
    timeout: 30_000,
  }, async () => {
    const { transport, queues } = setup();
    await transport.send('stage', [
      { body: 'p1', messageId: 'p1' },
      { body: 'p2', messageId: 'p2' },
    ]);
    const got = await receiveN(transport, 'stage', 2);
    await transport.settle(
      got.map((message) => ({
        message,
        action: 'deadLetter' as const,
        reason: 'MaxAttempts',
        description: `failed ${message.body}`,
      })),
    );
    const dead = await transport.listDeadLetters('stage');
    expect(dead.map((d) => [d.id, d.reason, d.description]).sort()).toEqual([
      ['p1', 'MaxAttempts', 'failed p1'],
      ['p2', 'MaxAttempts', 'failed p2'],
    ]);
    // Replay only p2 first, then the rest.
    expect(await transport.replayDeadLetters('stage', { ids: ['p2'] })).toBe(1);
    const [p2] = await receiveN(transport, 'stage', 1);
    expect(p2?.body).toBe('p2');
    expect(p2?.id).toBe('p2');
    expect(p2?.deliveryCount).toBe(1);
    await transport.settle([{ message: p2!, action: 'complete' }]);
    // A second listing starts from the beginning again (the SDK's peek cursor is shared per entity).
    expect((await transport.listDeadLetters('stage')).map((d) => d.id)).toEqual(['p1']);
    expect(emulator!.queueStats(queues.stage).deadLettered).toBe(1);
    expect(await transport.replayDeadLetters('stage')).toBe(1);
    const [p1] = await receiveN(transport, 'stage', 1);
    expect(p1?.body).toBe('p1');
    await transport.settle([{ message: p1!, action: 'complete' }]);
    expect(await transport.listDeadLetters('stage')).toEqual([]);
  });

  it('dead-letters after maxDeliveryCount abandons with MaxDeliveryCountExceeded', {
    timeout: 30_000,
  }, async () => {
    const { transport } = setup({ maxDeliveryCount: 3 });
    await transport.send('task', [{ body: 'poison' }]);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const [m] = await receiveN(transport, 'task', 1);
      expect(m?.deliveryCount).toBe(attempt);
      await transport.settle([{ message: m!, action: 'retry', delayMs: 0 }]);
    }
    expect(await receiveN(transport, 'task', 1, 1000)).toEqual([]);
    const dead = await transport.listDeadLetters('task');
    expect(dead.map((d) => d.reason)).toEqual(['MaxDeliveryCountExceeded']);
  });

  it('renews the lock of a long task', { timeout: 30_000 }, async () => {
    const { transport, queues } = setup({ lockDurationMs: 1000 });
    await transport.send('task', [{ body: 'long' }]);
    const [m] = await receiveN(transport, 'task', 1);
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 500));
      await transport.extendLock!(m!, 1000);
    }
    // 2.5 s after receipt with a 1 s lock: still locked, never redelivered.
    expect(emulator!.queueStats(queues.task)).toMatchObject({ locked: 1, active: 0 });
    await transport.settle([{ message: m!, action: 'complete' }]);
    expect(await receiveN(transport, 'task', 1, 1500)).toEqual([]);
  });

  it('ignores a settlement whose lock was lost; the message comes back once', {
    timeout: 30_000,
  }, async () => {
    const { transport } = setup({ lockDurationMs: 500 });
    await transport.send('task', [{ body: 'slow' }]);
    const [m] = await receiveN(transport, 'task', 1);
    await new Promise((r) => setTimeout(r, 1200));
    await transport.settle([{ message: m!, action: 'complete' }]); // lock expired: ignored, no throw
    const [again] = await receiveN(transport, 'task', 1);
    expect(again?.body).toBe('slow');
    // 2, or 3: its lock lapsed twice in the 1.2 s, once in the driver's prefetch buffer (a copy
    // whose lock lapsed there is skipped, never handed out).
    expect(again?.deliveryCount).toBeGreaterThanOrEqual(2);
    await transport.settle([{ message: again!, action: 'complete' }]);
    expect(await receiveN(transport, 'task', 1, 1500)).toEqual([]);
  });

  it('splits a send by maxBatchMessages and rejects a message too large for any batch', {
    timeout: 30_000,
  }, async () => {
    const queues = freshQueues(emulator!);
    const transport = serviceBusTransport({
      connectionString: emulator!.connectionString,
      queues,
      maxBatchMessages: 7,
    });
    open.push(transport);
    await transport.send(
      'task',
      Array.from({ length: 7 }, (_, i) => ({ body: `s-${i}` })),
    );
    expect((await receiveN(transport, 'task', 7)).length).toBe(7);
    const tooBig = 'x'.repeat(4 * 1024 * 1024);
    await expect(transport.send('task', [{ body: tooBig }])).rejects.toBeInstanceOf(
      MessageTooLargeError,
    );
  });

  it('resolves the connection string through a secret reference and a fake SecretSource', {
    timeout: 30_000,
  }, async () => {
    const queues = freshQueues(emulator!);
    const lookups: string[] = [];
    const secrets: SecretSource = {
      name: 'fake-vault',
      async getSecret(name) {
        lookups.push(name);
        return name === 'servicebus-connection' ? emulator!.connectionString : undefined;
      },
    };
    const viaRef = serviceBusTransport({
      connectionString: { secret: 'servicebus-connection', source: secrets },
      queues,
    });
    const viaName = serviceBusTransport({ secret: 'servicebus-connection', secrets, queues });
    open.push(viaRef, viaName);
    await viaRef.send('task', [{ body: 'via-secret' }]);
    await viaRef.send('task', [{ body: 'again' }]);
    const got = await receiveN(viaName, 'task', 2);
    expect(got.map((m) => m.body).sort()).toEqual(['again', 'via-secret']);
    await viaName.settle(got.map((message) => ({ message, action: 'complete' as const })));
    await viaRef.ping();
    // Resolved once per transport and cached.
    expect(lookups).toEqual(['servicebus-connection', 'servicebus-connection']);

    const missing = serviceBusTransport({ secret: 'nope', secrets, queues });
    open.push(missing);
    await expect(missing.send('task', [{ body: 'x' }])).rejects.toMatchObject({
      code: 'SECRET_NOT_FOUND',
    });
  });
});

describe('options validation (no backend)', () => {
  it('needs exactly one credential option and never echoes a connection string', async () => {
    expect(() => serviceBusTransport({})).toThrow(/exactly one/);
    expect(() =>
      serviceBusTransport({ connectionString: 'a', fullyQualifiedNamespace: 'b' }),
    ).toThrow(/exactly one/);
    const bad = serviceBusTransport({
      connectionString: 'SharedAccessKey=supersecretvalue;nonsense',
    });
    const err = await bad.send('task', [{ body: 'x' }]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CONFIG_ERROR' });
    expect(JSON.stringify(err) + String(err) + String((err as Error).cause)).not.toContain(
      'supersecretvalue',
    );
    await bad.close();
  });

  it('recommends a fairness window of 512 tasks waiting per stage, 8 messages when packed', async () => {
    const cs = 'Endpoint=sb://localhost/;SharedAccessKeyName=k;SharedAccessKey=v';
    const plain = serviceBusTransport({ connectionString: cs });
    expect(plain.limits.window).toBe(512);
    // The tiers pack 100 tasks per message.
    const standard = serviceBusTransport({ connectionString: cs, tier: 'standard' });
    expect(standard.limits.window).toBe(800);
    await Promise.all([plain.close(), standard.close()]);
  });
});
