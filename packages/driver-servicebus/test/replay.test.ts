import { randomBytes } from 'node:crypto';
import { ServiceBusClient } from '@azure/service-bus';
import type { ReceivedMessage, Transport } from '@switchyard/core/driver';

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { emulatorTransport, tryStartEmulator } from './emulator.js';

const emulator = await tryStartEmulator();
afterAll(async () => {
  await emulator?.close();
});

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

async function receiveN(transport: Transport, n: number, withinMs = 5000) {
  const got: ReceivedMessage[] = [];
  const deadline = Date.now() + withinMs;
  while (got.length < n && Date.now() < deadline) {
    got.push(
      ...(await transport.receive('task', {
        maxMessages: n - got.length,
        waitMs: Math.min(500, deadline - Date.now()),
      })),
    );
  }
  return got;
}

describe.skipIf(!emulator)('replaying Service Bus dead letters', () => {
  it('copies a binary body byte for byte', { timeout: 60_000 }, async () => {
    const { transport, queues } = emulatorTransport(emulator!, {}, { lockDurationMs: 1000 });
    const client = new ServiceBusClient(emulator!.connectionString);
    open.push(transport, client);
    // A body that is not UTF-8 (another producer's binary payload), 300 KiB.
    const bytes = randomBytes(307_200);
    await client.createSender(queues.task).sendMessages({ body: bytes, messageId: 'binary' });
    const [got] = await receiveN(transport, 1);
    await transport.settle([{ message: got!, action: 'deadLetter', reason: 'Unreadable' }]);

    expect(await transport.replayDeadLetters('task')).toBe(1);
    // Read the copy with a plain receiver (the transport would decode it as text); a message the
    // transport's receiver prefetched comes back when its lock expires.
    await transport.close();
    const receiver = client.createReceiver(queues.task, { skipParsingBodyAsJson: true });
    const [back] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 10_000 });
    await receiver.completeMessage(back!);
    const body = back?.body as Uint8Array;
    expect(body.byteLength).toBe(bytes.byteLength);
    expect(Buffer.from(body).equals(bytes)).toBe(true);
  });
});
