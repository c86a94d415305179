import { createConnection } from 'node:net';
import { ServiceBusClient } from '@azure/service-bus';
import { describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';

describe('client characterisation: rhea merges adjacent dispositions', () => {
  it('Promise.all([complete(a), abandon(b)]) on adjacent deliveries completes b as well', async () => {
    const emulator = await startEmulator({ port: 0 });
    const client = new ServiceBusClient(emulator.connectionString);
    try {
      const sender = client.createSender('hazard');
      await sender.sendMessages([{ body: 'a' }, { body: 'b' }]);
      const receiver = client.createReceiver('hazard');
      const got = [];
      while (got.length < 2)
        got.push(...(await receiver.receiveMessages(2, { maxWaitTimeInMs: 1000 })));
      const [a, b] = got;
      // Same tick: rhea sends one disposition frame first=a..last=b carrying a's outcome (accepted).
      await Promise.all([receiver.completeMessage(a!), receiver.abandonMessage(b!)]);
      // The emulator applies the frame as written, as Service Bus does: b is completed, not abandoned.
      expect(emulator.queueStats('hazard')).toEqual({
        active: 0,
        scheduled: 0,
        locked: 0,
        deadLettered: 0,
      });
      expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toEqual([]);
      await receiver.close();
      await sender.close();
    } finally {
      await client.close();
      await emulator.close();
    }
  });
});

describe('lifecycle', () => {
  it('close() drops connections and frees the port', async () => {
    const emulator = await startEmulator({ port: 0 });
    const client = new ServiceBusClient(emulator.connectionString);
    const sender = client.createSender('life');
    await sender.sendMessages({ body: 1 });
    const { port } = emulator;
    expect(emulator.connectionString).toBe(
      `Endpoint=sb://127.0.0.1:${port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true`,
    );
    await sender.close();
    await client.close();
    // A connection still open when close() is called is dropped, not waited for.
    const open = createConnection({ port, host: '127.0.0.1' });
    await new Promise((resolve) => open.once('connect', resolve));
    const dropped = new Promise((resolve) => open.once('close', resolve));
    await emulator.close();
    await dropped;
    const refused = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
    // The same port can be bound again at once.
    const again = await startEmulator({ port });
    expect(again.port).toBe(port);
    await again.close();
  });
});
