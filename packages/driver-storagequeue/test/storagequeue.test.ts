import type { SecretSource } from '@switchyard/core';
import { isSwitchyardError, ValidationError } from '@switchyard/core';
import type { Transport } from '@switchyard/core/driver';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  fromStorageQueueTrigger,
  parsePoisonMessage,
  type StorageQueueTransport,
  storageQueueTransport,
} from '../src/index.js';
import { DEVSTORE_KEY } from './azurite.js';
import { connectionString, deleteQueues, rawQueue, receiveAll, uniqueName } from './helpers.js';

const prefix = uniqueName('x');
let opened: Transport[] = [];

function open(
  options: Partial<Parameters<typeof storageQueueTransport>[0]> = {},
): StorageQueueTransport & { stageQueue: string; taskQueue: string } {
  const base = uniqueName(prefix);
  const stageQueue = `${base}-s`;
  const taskQueue = `${base}-t`;
  const t = storageQueueTransport({
    connectionString,
    queues: { stage: stageQueue, task: taskQueue },
    visibilityTimeoutMs: 1000,
    ...options,
  });
  opened.push(t);
  return Object.assign(t, { stageQueue, taskQueue });
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('option validation (no backend needed)', () => {
  const cs =
    'DefaultEndpointsProtocol=http;AccountName=a;AccountKey=c2VjcmV0;QueueEndpoint=http://127.0.0.1:1/a;';

  it.each([
    [{ queues: { task: 'Tasks' } }, 'queues.task', /lowercase/],
    [{ queues: { stage: 'a--b' } }, 'queues.stage', /single hyphens/],
    [{ queues: { stage: 'ab' } }, 'queues.stage', /3–63/],
    [{ queues: { task: '-abc' } }, 'queues.task', /starting and ending/],
    [{ queues: { task: 'a'.repeat(57) } }, 'queues.task', /-poison/],
    [{ queues: { task: 'a'.repeat(55) }, shards: 12 }, 'queues.task', /shard/],
    [{ queues: { stage: 'same', task: 'same' } }, 'queues', /overlap/],
    [{ shards: 0 }, 'shards', /integer/],
    [{ sendConcurrency: 1.5 }, 'sendConcurrency', /positive integer/],
    [{ encoding: 'utf16' }, 'encoding', /base64/],
    [{ visibilityTimeoutMs: 10 }, 'visibilityTimeoutMs', /1000/],
  ])('rejects %j naming %s', (extra, path, message) => {
    const err = catchError(() =>
      storageQueueTransport({ connectionString: cs, ...(extra as object) }),
    );
    expect(err).toBeInstanceOf(ValidationError);
    const issue = (err as ValidationError).issues?.find((i) => i.path === path);
    expect(issue?.message).toMatch(message);
    expect((err as ValidationError).code).toBe('INVALID_INPUT');
  });

  it('accepts the longest names that still fit with their suffixes', () => {
    expect(() =>
      storageQueueTransport({ connectionString: cs, queues: { task: 'a'.repeat(56) } }),
    ).not.toThrow();
    expect(() =>
      storageQueueTransport({ connectionString: cs, queues: { task: 'a'.repeat(53) }, shards: 10 }),
    ).not.toThrow();
  });

  it('needs exactly one way to connect, and never echoes a connection string', () => {
    expect(catchError(() => storageQueueTransport({}))).toBeInstanceOf(ValidationError);
    const both = catchError(() =>
      storageQueueTransport({
        connectionString: cs,
        accountUrl: 'https://a.queue.core.windows.net',
      }),
    ) as ValidationError;
    expect(both.issues?.[0]?.message).toMatch(/only one/);
    const bad = catchError(() =>
      storageQueueTransport({ connectionString: 'AccountKey=hunter2-very-secret;nonsense' }),
    ) as ValidationError;
    expect(bad.code).toBe('INVALID_INPUT');
    expect(JSON.stringify(bad.toJSON()) + String(bad.stack)).not.toContain('hunter2');
  });

  it('accepts an account URL with a token credential, and rejects a non-http URL', () => {
    const credential = {
      getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 60_000 }),
    };
    const t = storageQueueTransport({
      accountUrl: 'https://acct.queue.core.windows.net',
      credential,
    });
    expect(t.name).toBe('storagequeue');
    const err = catchError(() =>
      storageQueueTransport({ accountUrl: 'ftp://x' }),
    ) as ValidationError;
    expect(err.issues?.[0]?.path).toBe('accountUrl');
  });

  it('reports limits with base64 overhead and the poison header reserve', () => {
    const b64 = storageQueueTransport({ connectionString: cs });
    expect(b64.limits.maxMessageBytes).toBe(49_152 - 1024);
    expect(b64.limits.maxReceiveMessages).toBe(32);
    const text = storageQueueTransport({ connectionString: cs, encoding: 'text' });
    expect(text.limits.maxMessageBytes).toBe(65_536 - 1024);
  });

  it('recommends a fairness window of 512 tasks waiting per stage, 8 messages when packed', () => {
    expect(storageQueueTransport({ connectionString: cs }).limits.window).toBe(512);
    const packed = storageQueueTransport({ connectionString: cs, packTasks: 100 });
    expect(packed.limits.window).toBe(800);
  });

  it('rejects an over-limit body with a typed error pointing at the claim check, before any I/O', async () => {
    const t = storageQueueTransport({ connectionString: cs });
    const body = 'x'.repeat(48 * 1024 + 1);
    const err = await t.send('task', [{ body: 'ok' }, { body }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).issues?.[0]?.path).toBe('messages[1].body');
    expect((err as Error).message).toMatch(/claim check/);
  });
});

describe('fromStorageQueueTrigger', () => {
  const context = {
    triggerMetadata: {
      dequeueCount: 2,
      id: 'abc',
      popReceipt: 'pr',
      insertionTime: '2026-01-02T03:04:05.000Z',
    },
  };
  const envelope = { v: 1, kind: 'task', jobId: 'j' };

  it('accepts an already-parsed object', () => {
    const { body, meta } = fromStorageQueueTrigger(envelope, context, { queue: 'task' });
    expect(JSON.parse(body)).toEqual(envelope);
    expect(meta).toEqual({
      queue: 'task',
      deliveryCount: 2,
      messageId: 'abc',
      enqueuedAt: new Date('2026-01-02T03:04:05.000Z'),
      maxDeliveries: 5,
    });
  });

  it('accepts a string and a Buffer', () => {
    const text = JSON.stringify(envelope);
    expect(fromStorageQueueTrigger(text, context).body).toBe(text);
    expect(
      fromStorageQueueTrigger(Buffer.from(text), context, { queue: 'stage', maxDequeueCount: 3 }),
    ).toMatchObject({ body: text, meta: { queue: 'stage', maxDeliveries: 3 } });
  });

  it('defaults missing metadata', () => {
    expect(fromStorageQueueTrigger('x', {}).meta).toEqual({
      queue: 'task',
      deliveryCount: 1,
      messageId: '',
      maxDeliveries: 5,
    });
  });
});

describe.skipIf(!connectionString)('storagequeue driver on Azurite', () => {
  afterEach(async () => {
    await Promise.all(opened.map((t) => t.close()));
    opened = [];
  });
  afterAll(() => deleteQueues(prefix));

  it('writes base64 text a Functions trigger decodes, with no expiry', async () => {
    const t = open();
    await t.send('task', [{ body: '{"hello":"wörld"}' }]);
    const [peeked] = (await rawQueue(t.taskQueue).peekMessages()).peekedMessageItems;
    expect(Buffer.from(peeked!.messageText, 'base64').toString('utf8')).toBe('{"hello":"wörld"}');
    // messageTimeToLive -1: "never" is reported as the maximum date.
    expect(peeked!.expiresOn.getUTCFullYear()).toBeGreaterThan(9000);
  });

  it('round-trips with text encoding', async () => {
    const t = open({ encoding: 'text' });
    await t.send('task', [{ body: 'plain text ✓' }]);
    const [peeked] = (await rawQueue(t.taskQueue).peekMessages()).peekedMessageItems;
    expect(peeked!.messageText).toBe('plain text ✓');
    const [msg] = await receiveAll(t, 1);
    expect(msg?.body).toBe('plain text ✓');
  });

  it('carries a body of maxMessageBytes multi-byte characters', async () => {
    const t = open();
    const body = 'é'.repeat(t.limits.maxMessageBytes / 2);
    await t.send('task', [{ body }]);
    const [msg] = await receiveAll(t, 1);
    expect(msg?.body).toBe(body);
  });

  it('moves a message dequeued more than maxDequeueCount times to <queue>-poison', async () => {
    const t = open({ maxDequeueCount: 5 });
    await t.send('task', [{ body: 'keeps-failing' }]);
    for (let attempt = 1; attempt <= 5; attempt++) {
      const [msg] = await receiveAll(t, 1);
      expect(msg?.deliveryCount).toBe(attempt);
      await t.settle([{ message: msg!, action: 'retry', delayMs: 0 }]);
    }
    expect(await receiveAll(t, 1, 1500)).toEqual([]);
    const dead = await t.listDeadLetters('task');
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({
      queue: 'task',
      body: 'keeps-failing',
      reason: 'MaxDequeueCountExceeded',
    });
    expect(dead[0]?.description).toMatch(/dequeued 6 times/);
    // The poison queue is the Functions one, and its body ends with the original body.
    const [raw] = (await rawQueue(`${t.taskQueue}-poison`).peekMessages()).peekedMessageItems;
    const parsed = parsePoisonMessage(Buffer.from(raw!.messageText, 'base64').toString('utf8'));
    expect(parsed.body).toBe('keeps-failing');
    expect(parsed.header).toMatchObject({ reason: 'MaxDequeueCountExceeded', queue: t.taskQueue });
    expect((await rawQueue(t.taskQueue).peekMessages()).peekedMessageItems).toHaveLength(0);
  });

  it('passes a malformed (not base64) message through as raw text, and poisons/replays it verbatim', async () => {
    const t = open();
    await t.send('task', [{ body: 'warm-up' }]); // creates the queues
    await t.settle((await receiveAll(t, 1)).map((message) => ({ message, action: 'complete' })));
    await rawQueue(t.taskQueue).sendMessage('this is <not> base64 nor JSON!');
    const [msg] = await receiveAll(t, 1);
    expect(msg?.body).toBe('this is <not> base64 nor JSON!');
    await t.settle([
      { message: msg!, action: 'deadLetter', reason: 'MalformedMessage', description: 'bad' },
    ]);
    const [dead] = await t.listDeadLetters('task');
    expect(dead).toMatchObject({
      body: 'this is <not> base64 nor JSON!',
      reason: 'MalformedMessage',
    });
    expect(await t.replayDeadLetters('task')).toBe(1);
    const [back] = (await rawQueue(t.taskQueue).peekMessages()).peekedMessageItems;
    expect(back?.messageText).toBe('this is <not> base64 nor JSON!');
  });

  it('lists a message the Functions host poisoned (no header) with its raw body', async () => {
    const t = open();
    await t.send('task', [{ body: 'warm-up' }]);
    await rawQueue(`${t.taskQueue}-poison`).sendMessage(Buffer.from('{"a":1}').toString('base64'));
    const [dead] = await t.listDeadLetters('task');
    expect(dead).toMatchObject({ body: '{"a":1}', reason: 'MaxDequeueCountExceeded' });
  });

  it('replays only the dead letters asked for by id', async () => {
    const t = open();
    await t.send('task', [{ body: 'a' }, { body: 'b' }]);
    const got = await receiveAll(t, 2);
    await t.settle(got.map((message) => ({ message, action: 'deadLetter', reason: 'R' })));
    const dead = await t.listDeadLetters('task');
    const b = dead.find((d) => d.body === 'b')!;
    expect(await t.replayDeadLetters('task', { ids: [b.id] })).toBe(1);
    expect((await t.listDeadLetters('task')).map((d) => d.body)).toEqual(['a']);
    const [back] = await receiveAll(t, 1);
    expect(back?.body).toBe('b');
  });

  it('ignores a lost pop receipt on complete, retry and extendLock', async () => {
    const t = open();
    await t.send('task', [{ body: 'slow' }]);
    const [first] = await t.receive('task', {
      maxMessages: 1,
      visibilityTimeoutMs: 1000,
      waitMs: 3000,
    });
    // Let it expire and be received by another worker: the first receipt is now stale.
    await new Promise((r) => setTimeout(r, 1300));
    const [second] = await t.receive('task', {
      maxMessages: 1,
      visibilityTimeoutMs: 5000,
      waitMs: 3000,
    });
    expect(second?.deliveryCount).toBe(2);
    await expect(t.extendLock(first!, 1000)).resolves.toBeUndefined();
    await expect(
      t.settle([{ message: first!, action: 'retry', delayMs: 0 }]),
    ).resolves.toBeUndefined();
    await expect(t.settle([{ message: first!, action: 'complete' }])).resolves.toBeUndefined();
    await t.settle([{ message: second!, action: 'complete' }]);
  });

  it('keeps the delay of a retry, with a lock extension under way before it or asked for after', async () => {
    const t = open();
    const bodies = Array.from({ length: 8 }, (_, i) => `r-${i}`);
    await t.send(
      'task',
      bodies.map((body) => ({ body })),
    );
    const got = await receiveAll(t, bodies.length);
    expect(got).toHaveLength(bodies.length);
    const settledAt = Date.now();
    await Promise.all(
      got.map(async (message, i) => {
        const retry = { message, action: 'retry' as const, delayMs: 0 };
        if (i % 2 === 0) {
          // Under way first: the retry must carry the receipt the extension gets back.
          const extension = t.extendLock(message, 5000);
          await Promise.all([t.settle([retry]), extension]);
        } else {
          // Asked for once the retry was: it must not hide the message for 5 s again.
          const settled = t.settle([retry]);
          await Promise.all([settled, t.extendLock(message, 5000)]);
        }
      }),
    );
    const again = await receiveAll(t, bodies.length, 3000);
    expect(again.map((m) => m.body).sort()).toEqual([...bodies].sort());
    expect(Date.now() - settledAt).toBeLessThan(4000);
    await t.settle(again.map((message) => ({ message, action: 'complete' })));
  });

  it('spreads task messages over the shards and receives from all of them', async () => {
    const t = open({ shards: 3 });
    const bodies = Array.from({ length: 30 }, (_, i) => `s-${i}`);
    await t.send(
      'task',
      bodies.map((body) => ({ body })),
    );
    for (let i = 0; i < 3; i++) {
      const peeked = await rawQueue(`${t.taskQueue}-${i}`).peekMessages({ numberOfMessages: 32 });
      expect(peeked.peekedMessageItems).toHaveLength(10);
    }
    const got = await receiveAll(t, 30);
    expect(got.map((m) => m.body).sort()).toEqual([...bodies].sort());
    await t.settle(got.map((message) => ({ message, action: 'complete' })));
    // Dead letters go to the shard's own poison queue (the Functions convention) and list across shards.
    await t.send('task', [{ body: 'p1' }, { body: 'p2' }]);
    const two = await receiveAll(t, 2);
    await t.settle(two.map((message) => ({ message, action: 'deadLetter', reason: 'R' })));
    expect((await t.listDeadLetters('task')).map((d) => d.body).sort()).toEqual(['p1', 'p2']);
    expect(await t.replayDeadLetters('task')).toBe(2);
  });

  it('pings the task queue', async () => {
    const t = open();
    await t.send('task', [{ body: 'x' }]);
    await expect(t.ping()).resolves.toBeUndefined();
  });

  it('rotates a secret-sourced connection string after a 403 and keeps working', async () => {
    const wrong = connectionString.replace(
      DEVSTORE_KEY,
      Buffer.from('not the key').toString('base64'),
    );
    const lookups: string[] = [];
    const source: SecretSource = {
      name: 'fake',
      async getSecret(name) {
        lookups.push(name);
        return lookups.length === 1 ? wrong : connectionString;
      },
    };
    const t = open({ connectionString: undefined, secret: 'storage-connection', secrets: source });
    await t.send('task', [{ body: 'after-rotation' }]);
    expect(lookups).toEqual(['storage-connection', 'storage-connection']);
    const [msg] = await receiveAll(t, 1);
    expect(msg?.body).toBe('after-rotation');
    await t.settle([{ message: msg!, action: 'complete' }]);
    expect(lookups).toHaveLength(2);
  });

  it('fails with AUTH_FAILED, naming no key, when the refreshed secret is wrong too', async () => {
    const wrongKey = Buffer.from('still not the key').toString('base64');
    const wrong = connectionString.replace(DEVSTORE_KEY, wrongKey);
    const t = open({
      connectionString: {
        secret: 'storage-connection',
        source: { name: 'fake', getSecret: async () => wrong },
      },
    });
    const err = await t.send('task', [{ body: 'x' }]).catch((e: unknown) => e);
    expect(isSwitchyardError(err)).toBe(true);
    expect((err as { code: string }).code).toBe('AUTH_FAILED');
    const text = `${(err as Error).message} ${JSON.stringify(err)} ${String((err as Error).stack)}`;
    expect(text).not.toContain(wrongKey);
    expect(text).not.toContain(DEVSTORE_KEY);
  });
});
