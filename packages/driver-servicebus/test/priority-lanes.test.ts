import { ValidationError } from '@switchyard/core';
import type { DeadLetter, Transport } from '@switchyard/core/driver';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { serviceBusTransport } from '../src/index.js';
import { laneQueueNames } from '../src/lanes.js';
import { type Emulator, emulatorTransport, receiveN, tryStartEmulator } from './emulator.js';

/** Parsed, never dialled: transports connect on first use. */
const CONNECTION = 'Endpoint=sb://127.0.0.1:1/;SharedAccessKeyName=k;SharedAccessKey=v';

function issuesOf(make: () => unknown): { path: string; message: string }[] {
  try {
    make();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues ?? [];
  }
  throw new Error('expected a ValidationError');
}

describe('priority lane names', () => {
  it('derives <task>-high and <task>-low, the task queue being the normal lane', () => {
    expect(laneQueueNames('sb-tasks')).toEqual({
      high: 'sb-tasks-high',
      normal: 'sb-tasks',
      low: 'sb-tasks-low',
    });
    const t = serviceBusTransport({ connectionString: CONNECTION, priorityLanes: true });
    expect(t.priorities).toBe(true);
  });

  it('rejects a task queue name lanes cannot derive from, naming the field', () => {
    const bad = issuesOf(() =>
      serviceBusTransport({
        connectionString: CONNECTION,
        priorityLanes: true,
        queues: { task: 'bad name!' },
      }),
    );
    expect(bad).toEqual([{ path: 'queues.task', message: expect.stringContaining('bad name!') }]);
    // 256 characters + '-high' is one over Service Bus's 260.
    const long = issuesOf(() =>
      serviceBusTransport({
        connectionString: CONNECTION,
        priorityLanes: true,
        queues: { task: 'a'.repeat(256) },
      }),
    );
    expect(long).toEqual([{ path: 'queues.task', message: expect.stringContaining('too long') }]);
    expect(
      serviceBusTransport({
        connectionString: CONNECTION,
        priorityLanes: true,
        queues: { task: 'a'.repeat(255) },
      }).priorities,
    ).toBe(true);
    const clash = issuesOf(() =>
      serviceBusTransport({
        connectionString: CONNECTION,
        priorityLanes: true,
        queues: { stage: 'work-high', task: 'work' },
      }),
    );
    expect(clash).toEqual([{ path: 'queues.stage', message: expect.stringContaining('lane') }]);
  });

  it('without priorityLanes checks no names and keeps no lanes, as before', () => {
    const t = serviceBusTransport({
      connectionString: CONNECTION,
      queues: { task: 'a'.repeat(300) },
    });
    expect(t.priorities).toBeFalsy();
  });
});

const emulator = await tryStartEmulator();
afterAll(async () => {
  await emulator?.close();
});

const open: Transport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

function setup(priorityLanes: boolean, settings: { lockDurationMs?: number } = {}) {
  const made = emulatorTransport(emulator!, { priorityLanes }, settings);
  open.push(made.transport);
  return { ...made, lanes: laneQueueNames(made.queues.task) };
}

/** Polls until `check` passes (dispositions and schedules land a moment after they resolve). */
async function eventually(check: () => void, withinMs = 5000): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function stats(e: Emulator, name: string) {
  return e.queueStats(name);
}

/** Messages in a queue, available or locked by a receiver, and its dead letters. */
function queued(name: string): { queued: number; deadLettered: number } {
  const s = emulator!.queueStats(name);
  return { queued: s.active + s.locked, deadLettered: s.deadLettered };
}

describe.skipIf(!emulator)('priority lanes on the emulator', () => {
  it('sends each message to its priority’s queue (absent = normal)', {
    timeout: 30_000,
  }, async () => {
    const { transport, lanes } = setup(true);
    await transport.send('task', [
      { body: 'h-0', priority: 'high' },
      { body: 'n-0' },
      { body: 'l-0', priority: 'low' },
      { body: 'h-1', priority: 'high' },
      { body: 'n-1', priority: 'normal' },
      { body: 'n-2' },
    ]);
    expect(stats(emulator!, lanes.high).active).toBe(2);
    expect(stats(emulator!, lanes.normal).active).toBe(3);
    expect(stats(emulator!, lanes.low).active).toBe(1);
    expect(transport.usage().operations.send).toBe(6);
    const got = await receiveN(transport, 'task', 6);
    expect(got.map((m) => [m.body, m.priority]).sort()).toEqual([
      ['h-0', 'high'],
      ['h-1', 'high'],
      ['l-0', 'low'],
      ['n-0', 'normal'],
      ['n-1', 'normal'],
      ['n-2', 'normal'],
    ]);
    // Within a lane, first in first out.
    expect(got.filter((m) => m.priority === 'normal').map((m) => m.body)).toEqual([
      'n-0',
      'n-1',
      'n-2',
    ]);
    await transport.settle(got.map((message) => ({ message, action: 'complete' })));
    await eventually(() => {
      for (const name of Object.values(lanes)) expect(stats(emulator!, name).locked).toBe(0);
    });
  });

  it('fills a receive from its first lane, then from the next ones, highest first', {
    timeout: 30_000,
  }, async () => {
    const { transport, lanes } = setup(true, { lockDurationMs: 10_000 });
    const send = (lane: 'high' | 'normal' | 'low', n: number) =>
      transport.send(
        'task',
        Array.from({ length: n }, (_, i) => ({ body: `${lane}-${i}`, priority: lane })),
      );
    await send('high', 2);
    await send('normal', 5);
    await send('low', 5);
    // The first receive (order high, normal, low) opens the lanes' receivers and takes nothing;
    // then every message is buffered.
    expect(await transport.receive('task', { maxMessages: 1, waitMs: 0 })).toEqual([]);
    await eventually(() => {
      const locked = Object.values(lanes).map((name) => stats(emulator!, name).locked);
      expect(locked).toEqual([2, 5, 5]);
    });
    await new Promise((r) => setTimeout(r, 100));
    // The second receive starts with normal (6:3:1 picks high, normal, high, …): five from
    // normal, the rest from high; low is not read while the higher lanes fill the receive.
    const got = await transport.receive('task', { maxMessages: 7, waitMs: 0 });
    expect(got.map((m) => m.body)).toEqual([
      'normal-0',
      'normal-1',
      'normal-2',
      'normal-3',
      'normal-4',
      'high-0',
      'high-1',
    ]);
    const rest = await transport.receive('task', { maxMessages: 10, waitMs: 0 });
    expect(rest.map((m) => m.priority)).toEqual(['low', 'low', 'low', 'low', 'low']);
    await transport.settle([...got, ...rest].map((message) => ({ message, action: 'complete' })));
  });

  it('leaves the stage queue without lanes', { timeout: 30_000 }, async () => {
    const { transport, queues } = setup(true);
    await transport.send('stage', [{ body: 'stage-0', priority: 'high' }]);
    expect(stats(emulator!, queues.stage).active).toBe(1);
    expect(stats(emulator!, `${queues.stage}-high`).active).toBe(0);
    const [m] = await receiveN(transport, 'stage', 1);
    expect(m?.body).toBe('stage-0');
    expect(m?.priority).toBeUndefined();
    await transport.settle([{ message: m!, action: 'complete' }]);
  });

  it('keeps a delayed retry, an abandon and a lock renewal on the message’s lane', {
    timeout: 30_000,
  }, async () => {
    const { transport, lanes } = setup(true, { lockDurationMs: 5000 });
    await transport.send('task', [{ body: 'low-0', messageId: 'low-0', priority: 'low' }]);
    const [first] = await receiveN(transport, 'task', 1);
    expect(first?.priority).toBe('low');
    await transport.extendLock(first!);
    expect(transport.usage().operations.renewLock).toBe(1);
    await transport.settle([{ message: first!, action: 'retry', delayMs: 1500 }]);
    await eventually(() => expect(stats(emulator!, lanes.low).scheduled).toBe(1));
    expect(stats(emulator!, lanes.normal).scheduled).toBe(0);
    expect(stats(emulator!, lanes.high).scheduled).toBe(0);
    const [again] = await receiveN(transport, 'task', 1);
    expect(again?.body).toBe('low-0');
    expect(again?.priority).toBe('low');
    expect(again?.deliveryCount).toBe(2);
    await transport.settle([{ message: again!, action: 'retry', delayMs: 0 }]);
    const [third] = await receiveN(transport, 'task', 1);
    expect(third?.priority).toBe('low');
    await transport.settle([{ message: third!, action: 'complete' }]);
  });

  it('lists dead letters across the lanes and replays each to its own lane', {
    timeout: 60_000,
  }, async () => {
    const { transport, lanes } = setup(true);
    await transport.send('task', [
      { body: 'h', messageId: 'id-h', priority: 'high' },
      { body: 'n', messageId: 'id-n' },
      { body: 'l', messageId: 'id-l', priority: 'low' },
    ]);
    const got = await receiveN(transport, 'task', 3);
    expect(got).toHaveLength(3);
    await transport.settle(
      got.map((message) => ({ message, action: 'deadLetter', reason: `Bad-${message.body}` })),
    );
    await eventually(() => {
      for (const name of Object.values(lanes)) expect(stats(emulator!, name).deadLettered).toBe(1);
    });

    const listed = await transport.listDeadLetters('task');
    expect(listed.map((d) => [d.id, d.body, d.reason, d.queue])).toEqual([
      ['id-h', 'h', 'Bad-h', 'task'],
      ['id-n', 'n', 'Bad-n', 'task'],
      ['id-l', 'l', 'Bad-l', 'task'],
    ]);
    expect((await transport.listDeadLetters('task', { limit: 2 })).map((d) => d.id)).toEqual([
      'id-h',
      'id-n',
    ]);

    const seen: DeadLetter[][] = [];
    const moved = await transport.replayDeadLetters('task', {
      ids: ['id-h', 'id-l'],
      accept: async (letters) => {
        seen.push([...letters]);
        return letters.map(() => true);
      },
    });
    expect(moved).toBe(2);
    expect(seen.flat().map((d) => d.id)).toEqual(['id-h', 'id-l']);
    // Back in their lanes (locked there already when the lane's receiver prefetched them).
    await eventually(() => {
      expect(queued(lanes.high)).toEqual({ queued: 1, deadLettered: 0 });
      expect(queued(lanes.low)).toEqual({ queued: 1, deadLettered: 0 });
      expect(queued(lanes.normal)).toEqual({ queued: 0, deadLettered: 1 });
    });
    expect((await transport.listDeadLetters('task')).map((d) => d.id)).toEqual(['id-n']);
    const back = await receiveN(transport, 'task', 2);
    expect(back.map((m) => [m.id, m.priority]).sort()).toEqual([
      ['id-h', 'high'],
      ['id-l', 'low'],
    ]);
    await transport.settle(back.map((message) => ({ message, action: 'complete' })));

    // limit counts across the lanes: one more, then none.
    expect(await transport.replayDeadLetters('task', { limit: 1 })).toBe(1);
    expect(await transport.listDeadLetters('task')).toEqual([]);
  });

  it('waits once on all lanes when idle, and wakes for a message on any lane', {
    timeout: 30_000,
  }, async () => {
    const { transport } = setup(true);
    // Opens the lanes' receivers and lets them warm up.
    await transport.receive('task', { maxMessages: 1, waitMs: 600 });
    let t0 = Date.now();
    expect(await transport.receive('task', { maxMessages: 10, waitMs: 300 })).toEqual([]);
    const idle = Date.now() - t0;
    expect(idle).toBeGreaterThanOrEqual(290);
    expect(idle).toBeLessThan(800);

    // Whatever lane the schedule picks first, a message on the lowest one ends the wait.
    t0 = Date.now();
    const pending = transport.receive('task', { maxMessages: 10, waitMs: 5000 });
    await new Promise((r) => setTimeout(r, 100));
    await transport.send('task', [{ body: 'late', priority: 'low' }]);
    const [late] = await pending;
    expect(late?.body).toBe('late');
    expect(Date.now() - t0).toBeLessThan(2500);
    await transport.settle([{ message: late!, action: 'complete' }]);
  });

  it('pings every lane’s queue', { timeout: 30_000 }, async () => {
    const { transport } = setup(true);
    await transport.ping();
    expect(transport.usage().operations.peek).toBe(3);
  });

  it('with priorityLanes off behaves as before: one task queue, no priorities', {
    timeout: 30_000,
  }, async () => {
    const { transport, queues, lanes } = setup(false);
    expect(transport.priorities).toBeFalsy();
    await transport.send('task', [
      { body: 'a', priority: 'high' },
      { body: 'b', priority: 'low' },
      { body: 'c' },
    ]);
    expect(stats(emulator!, queues.task).active).toBe(3);
    expect(stats(emulator!, lanes.high).active).toBe(0);
    expect(stats(emulator!, lanes.low).active).toBe(0);
    const got = await receiveN(transport, 'task', 3);
    expect(got.map((m) => m.body)).toEqual(['a', 'b', 'c']);
    for (const m of got) expect('priority' in m).toBe(false);
    await transport.settle(got.map((message) => ({ message, action: 'deadLetter', reason: 'X' })));
    await eventually(() => expect(stats(emulator!, queues.task).deadLettered).toBe(3));
    expect((await transport.listDeadLetters('task')).map((d) => d.body)).toEqual(['a', 'b', 'c']);
    expect(await transport.replayDeadLetters('task')).toBe(3);
    await transport.ping();
    expect(transport.usage().operations.peek).toBe(1);
  });
});
