import { randomBytes } from 'node:crypto';
import type { ReceivedMessage, Transport } from '@switchyard/core/driver';

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { storageQueueTransport } from '../src/index.js';
import { connectionString, deleteQueues, rawQueue, uniqueName } from './helpers.js';

const prefix = uniqueName('r');
const opened: Transport[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});
afterAll(() => deleteQueues(prefix));

async function receiveAll(t: Transport, count: number, withinMs = 5000) {
  const got: ReceivedMessage[] = [];
  const deadline = Date.now() + withinMs;
  while (got.length < count && Date.now() < deadline) {
    got.push(...(await t.receive('task', { maxMessages: count - got.length, waitMs: 300 })));
  }
  return got;
}

describe.skipIf(!connectionString)('replaying storage queue poison messages', () => {
  it('copies a binary (not UTF-8) body byte for byte', { timeout: 30_000 }, async () => {
    const taskQueue = `${uniqueName(prefix)}-t`;
    const t = storageQueueTransport({
      connectionString,
      queues: { stage: `${taskQueue}s`, task: taskQueue },
      visibilityTimeoutMs: 1000,
    });
    opened.push(t);
    await t.send('task', [{ body: 'warm-up' }]);
    await t.settle((await receiveAll(t, 1)).map((message) => ({ message, action: 'complete' })));
    // Another producer's binary payload, base64 as the Functions convention has it.
    const text = randomBytes(30_000).toString('base64');
    await rawQueue(taskQueue).sendMessage(text);
    const [msg] = await receiveAll(t, 1);
    await t.settle([{ message: msg!, action: 'deadLetter', reason: 'Unreadable' }]);

    expect(await t.replayDeadLetters('task')).toBe(1);
    const [back] = (await rawQueue(taskQueue).peekMessages()).peekedMessageItems;
    expect(back?.messageText).toBe(text);
  });
});
