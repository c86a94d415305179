import { ValidationError } from '@switchyard/core';
import type { Transport } from '@switchyard/core/driver';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type StorageQueueTransport,
  type StorageQueueTransportOptions,
  storageQueueTransport,
  storageQueueTriggerQueues,
} from '../src/index.js';
import { LANE_BACKOFF_MAX_MS, LANE_BACKOFF_MIN_MS, LaneClock } from '../src/lanes.js';
import { connectionString, deleteQueues, rawQueue, receiveAll, uniqueName } from './helpers.js';

const cs =
  'DefaultEndpointsProtocol=http;AccountName=a;AccountKey=c2VjcmV0;QueueEndpoint=http://127.0.0.1:1/a;';

function issueOf(fn: () => unknown, path: string): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues?.find((i) => i.path === path)?.message;
  }
  throw new Error('expected a ValidationError');
}

describe('priority lane names (no backend needed)', () => {
  it('derives a -high and a -low lane beside the task queue, sharded alike, stage untouched', () => {
    expect(
      storageQueueTriggerQueues({
        queues: { stage: 'jobs', task: 'tasks' },
        shards: 2,
        priorityLanes: true,
      }),
    ).toEqual([
      { queueName: 'jobs', queue: 'stage' },
      { queueName: 'tasks-high-0', queue: 'task', priority: 'high' },
      { queueName: 'tasks-high-1', queue: 'task', priority: 'high' },
      { queueName: 'tasks-0', queue: 'task', priority: 'normal' },
      { queueName: 'tasks-1', queue: 'task', priority: 'normal' },
      { queueName: 'tasks-low-0', queue: 'task', priority: 'low' },
      { queueName: 'tasks-low-1', queue: 'task', priority: 'low' },
    ]);
    expect(storageQueueTriggerQueues({ priorityLanes: true }).map((q) => q.queueName)).toEqual([
      'sq-jobs',
      'sq-tasks-high',
      'sq-tasks',
      'sq-tasks-low',
    ]);
  });

  it('lists the same queues as before without lanes', () => {
    expect(storageQueueTriggerQueues()).toEqual([
      { queueName: 'sq-jobs', queue: 'stage' },
      { queueName: 'sq-tasks', queue: 'task' },
    ]);
    expect(storageQueueTriggerQueues({ shards: 2 }).map((q) => q.queueName)).toEqual([
      'sq-jobs',
      'sq-tasks-0',
      'sq-tasks-1',
    ]);
  });

  it('checks the longest lane name with its shard and -poison suffixes, naming queues.task', () => {
    const open = (options: Partial<StorageQueueTransportOptions>) => () =>
      storageQueueTransport({ connectionString: cs, priorityLanes: true, ...options });
    // `<task>-high-poison`: 12 characters of suffix.
    expect(open({ queues: { task: 'a'.repeat(51) } })).not.toThrow();
    expect(issueOf(open({ queues: { task: 'a'.repeat(52) } }), 'queues.task')).toMatch(
      /lane \("-high"\) and "-poison" suffixes.*a-high-poison" must be 3–63 characters \(is 64\)/,
    );
    // `<task>-high-9-poison`: 14 characters.
    expect(open({ queues: { task: 'a'.repeat(49) }, shards: 10 })).not.toThrow();
    expect(issueOf(open({ queues: { task: 'a'.repeat(50) }, shards: 10 }), 'queues.task')).toMatch(
      /lane \("-high"\), shard and "-poison" suffixes.*a-high-9-poison"/,
    );
    // Without lanes the same names are fine, as before.
    expect(() =>
      storageQueueTransport({ connectionString: cs, queues: { task: 'a'.repeat(52) } }),
    ).not.toThrow();
    // The trigger helper applies the same rules.
    expect(
      issueOf(
        () => storageQueueTriggerQueues({ queues: { task: 'a'.repeat(52) }, priorityLanes: true }),
        'queues.task',
      ),
    ).toMatch(/-high/);
  });

  it('rejects a stage queue that is one of the lanes, and a non-boolean priorityLanes', () => {
    const options = { connectionString: cs, queues: { stage: 'work-high', task: 'work' } };
    expect(() => storageQueueTransport(options)).not.toThrow();
    expect(
      issueOf(() => storageQueueTransport({ ...options, priorityLanes: true }), 'queues'),
    ).toMatch(/lane, shard and poison suffixes/);
    expect(
      issueOf(
        () =>
          storageQueueTransport({
            connectionString: cs,
            priorityLanes: 'yes' as unknown as boolean,
          }),
        'priorityLanes',
      ),
    ).toMatch(/true or false/);
  });

  it('reports priorities exactly when lanes are on', () => {
    expect(storageQueueTransport({ connectionString: cs, priorityLanes: true }).priorities).toBe(
      true,
    );
    expect(storageQueueTransport({ connectionString: cs }).priorities).toBe(false);
  });

  it('rejects an unknown priority on send, naming the message, when lanes are on', async () => {
    const t = storageQueueTransport({ connectionString: cs, priorityLanes: true });
    const err = await t
      .send('task', [{ body: 'a' }, { body: 'b', priority: 'urgent' as 'high' }])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).issues?.[0]?.path).toBe('messages[1].priority');
  });
});

describe('LaneClock: when an idle lane is read again', () => {
  it('backs an empty lane off from 50 ms doubling to 1 s, and makes a lane with messages due at once', () => {
    const clock = new LaneClock();
    let now = 1_000_000;
    expect(clock.isDue('high', now)).toBe(true);
    const gaps: number[] = [];
    for (let i = 0; i < 7; i++) {
      clock.startRead('high', now);
      clock.endRead('high', now, false, now);
      const until = clock.msUntilDue(now);
      expect(until, 'the other lanes were never read: due').toBe(0);
      let gap = 0;
      while (!clock.isDue('high', now + gap)) gap++;
      gaps.push(gap);
      now += gap;
    }
    expect(gaps).toEqual([50, 100, 200, 400, 800, 1000, 1000]);
    expect(LANE_BACKOFF_MIN_MS).toBe(50);
    expect(LANE_BACKOFF_MAX_MS).toBe(1000);
    clock.startRead('high', now);
    clock.endRead('high', now, true, now + 5);
    expect(clock.isDue('high', now + 5)).toBe(true);
    clock.startRead('high', now + 5);
    clock.endRead('high', now + 5, false, now + 5);
    expect(clock.isDue('high', now + 5 + 49)).toBe(false);
    expect(clock.isDue('high', now + 5 + 50)).toBe(true);
  });

  it('lets one receive call poll a quiet lane while the others skip it; a busy lane is read by all', () => {
    const clock = new LaneClock();
    const now = 1_000_000;
    clock.startRead('low', now);
    clock.endRead('low', now, false, now);
    expect(clock.isDue('low', now + 50)).toBe(true);
    clock.startRead('low', now + 50); // one call polls it
    expect(clock.isDue('low', now + 60)).toBe(false); // a concurrent call skips it
    clock.endRead('low', now + 50, true, now + 70);
    clock.startRead('low', now + 70);
    expect(clock.isDue('low', now + 71)).toBe(true);
  });

  it('makes a quiet lane due when this transport puts a message there, once it is visible', () => {
    const clock = new LaneClock();
    const now = 1_000_000;
    for (const lane of ['high', 'normal', 'low'] as const) {
      clock.startRead(lane, now);
      clock.endRead(lane, now, false, now);
    }
    expect(clock.msUntilDue(now)).toBe(50);
    clock.put('low', now + 10);
    expect(clock.msUntilDue(now)).toBe(10);
    expect(clock.isDue('low', now + 10)).toBe(true);
    expect(clock.isDue('high', now + 10)).toBe(false);
    // A put while a read of the lane is in flight: the read coming back empty keeps it due.
    clock.startRead('normal', now + 50);
    clock.put('normal', now + 55);
    clock.endRead('normal', now + 50, false, now + 60);
    expect(clock.isDue('normal', now + 60)).toBe(true);
    // The read that started after the put was visible consumes the wake; empty, it backs off from 50 ms.
    clock.startRead('normal', now + 60);
    clock.endRead('normal', now + 60, false, now + 60);
    expect(clock.isDue('normal', now + 109)).toBe(false);
    expect(clock.isDue('normal', now + 110)).toBe(true);
  });

  it('ends a sleep early when a message is put in a lane', async () => {
    const clock = new LaneClock();
    const started = Date.now();
    const sleeping = clock.sleep(5000, new AbortController().signal);
    setTimeout(() => clock.put('high', Date.now()), 20);
    await sleeping;
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

const prefix = uniqueName('l');
let opened: Transport[] = [];

function open(
  options: Partial<StorageQueueTransportOptions> = {},
): StorageQueueTransport & { stageQueue: string; taskQueue: string } {
  const base = uniqueName(prefix);
  const stageQueue = `${base}-s`;
  const taskQueue = `${base}-t`;
  const t = storageQueueTransport({
    connectionString,
    queues: { stage: stageQueue, task: taskQueue },
    visibilityTimeoutMs: 1000,
    priorityLanes: true,
    ...options,
  });
  opened.push(t);
  return Object.assign(t, { stageQueue, taskQueue });
}

async function peekBodies(queue: string): Promise<string[]> {
  const peeked = await rawQueue(queue).peekMessages({ numberOfMessages: 32 });
  return peeked.peekedMessageItems
    .map((m) => Buffer.from(m.messageText, 'base64').toString('utf8'))
    .sort();
}

async function queueExists(queue: string): Promise<boolean> {
  return rawQueue(queue).exists();
}

function getMessages(t: StorageQueueTransport): number {
  return t.usage().operations.getMessages ?? 0;
}

/** `receivers` concurrent loops of `calls` idle receives (1 s wait each); the getMessages made. */
async function idlePolls(t: StorageQueueTransport, receivers: number, calls: number) {
  const before = getMessages(t);
  await Promise.all(
    Array.from({ length: receivers }, async () => {
      for (let i = 0; i < calls; i++) {
        expect(await t.receive('task', { maxMessages: 32, waitMs: 1000 })).toEqual([]);
      }
    }),
  );
  return getMessages(t) - before;
}

describe.skipIf(!connectionString)('priority lanes on Azurite', () => {
  afterEach(async () => {
    await Promise.all(opened.map((t) => t.close()));
    opened = [];
  });
  afterAll(() => deleteQueues(prefix));

  it('sends each message to its priority lane, over the lane shards, and reports the lane on receive', async () => {
    const t = open({ shards: 2 });
    const messages = [
      ...['h1', 'h2', 'h3', 'h4'].map((body) => ({ body, priority: 'high' as const })),
      { body: 'n1' },
      { body: 'n2' },
      { body: 'n3', priority: 'normal' as const },
      { body: 'n4', priority: 'normal' as const },
      ...['l1', 'l2', 'l3', 'l4'].map((body) => ({ body, priority: 'low' as const })),
    ];
    await t.send('task', messages);
    const lanes = { high: '-high', normal: '', low: '-low' } as const;
    for (const [lane, suffix] of Object.entries(lanes)) {
      const shard0 = await peekBodies(`${t.taskQueue}${suffix}-0`);
      const shard1 = await peekBodies(`${t.taskQueue}${suffix}-1`);
      expect(shard0, lane).toHaveLength(2);
      expect([...shard0, ...shard1].sort()).toEqual(
        [1, 2, 3, 4].map((n) => `${lane[0]}${n}`).sort(),
      );
    }
    const got = await receiveAll(t, 12);
    expect(got).toHaveLength(12);
    for (const m of got) {
      expect(m.priority, m.body).toBe({ h: 'high', n: 'normal', l: 'low' }[m.body[0]!]);
    }
    await t.settle(got.map((message) => ({ message, action: 'complete' })));

    // The stage queue has no lanes: a priority there is ignored.
    await t.send('stage', [{ body: 'st', priority: 'high' }]);
    expect(await peekBodies(t.stageQueue)).toEqual(['st']);
    expect(await queueExists(`${t.stageQueue}-high`)).toBe(false);
    const [stageMessage] = await t.receive('stage', { maxMessages: 1, waitMs: 3000 });
    expect(stageMessage?.body).toBe('st');
    expect(stageMessage?.priority).toBeUndefined();
  });

  it('keeps dead letters in each lane poison queue, lists them all and replays each to its lane', async () => {
    const t = open();
    await t.send('task', [
      { body: 'dh', priority: 'high' },
      { body: 'dn' },
      { body: 'dl', priority: 'low' },
    ]);
    const got = await receiveAll(t, 3);
    await t.settle(got.map((message) => ({ message, action: 'deadLetter', reason: 'R' })));
    for (const [suffix, body] of [
      ['-high', 'dh'],
      ['', 'dn'],
      ['-low', 'dl'],
    ] as const) {
      const raw = await peekBodies(`${t.taskQueue}${suffix}-poison`);
      expect(raw, suffix).toHaveLength(1);
      expect(raw[0]).toMatch(new RegExp(`\\n${body}$`));
    }
    const dead = await t.listDeadLetters('task');
    expect(dead.map((d) => d.body).sort()).toEqual(['dh', 'dl', 'dn']);
    expect(new Set(dead.map((d) => d.id)).size).toBe(3);
    expect(dead.every((d) => d.reason === 'R' && d.queue === 'task')).toBe(true);
    expect((await t.listDeadLetters('task', { limit: 2 })).length).toBe(2);

    // By id, from one lane; then the rest, each to its own lane, through accept.
    const low = dead.find((d) => d.body === 'dl')!;
    expect(await t.replayDeadLetters('task', { ids: [low.id] })).toBe(1);
    expect(await peekBodies(`${t.taskQueue}-low`)).toEqual(['dl']);
    const offered: string[][] = [];
    const moved = await t.replayDeadLetters('task', {
      accept: async (letters) => {
        offered.push(letters.map((l) => l.body));
        return letters.map((l) => l.body !== 'dn');
      },
    });
    expect(moved).toBe(1);
    expect(offered).toEqual([['dh'], ['dn']]);
    expect(await peekBodies(`${t.taskQueue}-high`)).toEqual(['dh']);
    expect((await t.listDeadLetters('task')).map((d) => d.body)).toEqual(['dn']);
    expect(await t.replayDeadLetters('task', { limit: 1 })).toBe(1);
    expect(await peekBodies(t.taskQueue)).toEqual(['dn']);

    const back = await receiveAll(t, 3);
    expect(back.map((m) => `${m.body}:${m.priority}`).sort()).toEqual([
      'dh:high',
      'dl:low',
      'dn:normal',
    ]);
    await t.settle(back.map((message) => ({ message, action: 'complete' })));
  });

  it('moves an over-delivered lane message to that lane poison queue, and extends its lock there', async () => {
    const t = open({ maxDequeueCount: 2 });
    await t.send('task', [{ body: 'flaky', priority: 'low' }]);
    for (let attempt = 1; attempt <= 2; attempt++) {
      const [m] = await receiveAll(t, 1);
      expect(m?.priority).toBe('low');
      await t.settle([{ message: m!, action: 'retry', delayMs: 0 }]);
    }
    expect(await receiveAll(t, 1, 1500)).toEqual([]);
    expect((await peekBodies(`${t.taskQueue}-low-poison`))[0]).toMatch(/MaxDequeueCountExceeded/);
    expect((await t.listDeadLetters('task')).map((d) => d.body)).toEqual(['flaky']);

    await t.send('task', [{ body: 'slow', priority: 'high' }]);
    const [slow] = await t.receive('task', {
      maxMessages: 1,
      visibilityTimeoutMs: 1000,
      waitMs: 3000,
    });
    expect(slow?.priority).toBe('high');
    await t.extendLock(slow!, 4000);
    expect(await receiveAll(t, 1, 2000)).toEqual([]);
    await t.settle([{ message: slow!, action: 'complete' }]);
    expect(await peekBodies(`${t.taskQueue}-high`)).toEqual([]);
  });

  it('keeps idle receives cheap: each lane is read about once a second, shared by all receive calls', {
    timeout: 30_000,
  }, async () => {
    const off = open({ priorityLanes: false });
    const on = open();
    const one = open();
    await Promise.all([off.ping(), on.ping(), one.ping()]);
    // Three seconds idle, with the engine's default of two receive calls in flight (and one).
    const [offPolls, onPolls, onePolls] = await Promise.all([
      idlePolls(off, 2, 3),
      idlePolls(on, 2, 3),
      idlePolls(one, 1, 3),
    ]);
    // Without lanes each 1 s receive call polls on its own back-off (0, 50, 150, 350, 750,
    // 1000 ms): about six reads per call. With lanes, three lanes share one back-off per lane:
    // about 5 reads each in the first second and one a second after that, whatever the calls.
    expect(offPolls).toBeGreaterThanOrEqual(2 * 3 * 4);
    expect(onPolls).toBeLessThanOrEqual(3 * (5 + 3) + 3);
    expect(onPolls).toBeLessThan(offPolls);
    expect(onPolls).toBeLessThanOrEqual(onePolls + 3);
    // Idle for longer, a lanes transport reads each lane about once a second.
    const steady = await idlePolls(on, 2, 2);
    expect(steady).toBeLessThanOrEqual(3 * 3);
  });

  it('reads a quiet lane at once when this transport sends to it', {
    timeout: 20_000,
  }, async () => {
    const t = open();
    await idlePolls(t, 1, 2); // every lane quiet, backed off to 1 s
    const waiting = t.receive('task', { maxMessages: 32, waitMs: 5000 });
    // Right after a pass over the three lanes: the next one is about a second away.
    const idleReads = getMessages(t);
    while (getMessages(t) < idleReads + 3) await new Promise((r) => setTimeout(r, 5));
    const sentAt = Date.now();
    const before = getMessages(t);
    await t.send('task', [{ body: 'wake', priority: 'low' }]);
    const [m] = await waiting;
    expect(m?.body).toBe('wake');
    expect(Date.now() - sentAt).toBeLessThan(500);
    // Only the lane it was sent to was read: the others stayed quiet.
    expect(getMessages(t) - before).toBe(1);
    await t.settle([{ message: m!, action: 'complete' }]);
  });

  it('without lanes, behaves as before: one task queue, priority ignored, no lane reported', {
    timeout: 20_000,
  }, async () => {
    const t = open({ priorityLanes: false });
    expect(t.priorities).toBe(false);
    await t.send('task', [
      { body: 'a', priority: 'high' },
      { body: 'b', priority: 'low' },
      { body: 'c', priority: 'oops' as 'low' },
    ]);
    expect(await peekBodies(t.taskQueue)).toEqual(['a', 'b', 'c']);
    expect(await queueExists(`${t.taskQueue}-high`)).toBe(false);
    expect(await queueExists(`${t.taskQueue}-low`)).toBe(false);
    const got = await receiveAll(t, 3);
    expect(got.map((m) => m.body).sort()).toEqual(['a', 'b', 'c']);
    for (const m of got) expect('priority' in m).toBe(false);
    await t.settle(got.map((message) => ({ message, action: 'deadLetter', reason: 'R' })));
    expect((await t.listDeadLetters('task')).map((d) => d.body).sort()).toEqual(['a', 'b', 'c']);
    expect(await t.replayDeadLetters('task')).toBe(3);
    expect(await peekBodies(t.taskQueue)).toEqual(['a', 'b', 'c']);
    await t.settle((await receiveAll(t, 3)).map((message) => ({ message, action: 'complete' })));
    // Each idle receive call polls on its own back-off, as before: about six reads a second.
    const polls = await idlePolls(t, 1, 2);
    expect(polls).toBeGreaterThanOrEqual(2 * 4);
    expect(polls).toBeLessThanOrEqual(2 * 7);
  });
});
