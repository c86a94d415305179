/**
 * The part of the transport conformance suite about replaying dead letters: a pass terminates
 * while a worker dead-letters the copies again, counts what it moved, keeps what `accept`
 * refuses, and copies bodies exactly (up to the largest the transport carries). Run by {@link transportConformance} for every transport
 * with the dead-letter capability.
 * @module
 */
import { expect, it } from 'vitest';
import type { DeadLetterCapability, QueueKind, ReceivedMessage, Transport } from '../transport.js';

export interface ReplayConformanceContext {
  transport: () => Transport;
  receiveN: (queue: QueueKind, count: number, withinMs?: number) => Promise<ReceivedMessage[]>;
  visibilityMs: number;
  slackMs: number;
  timeout: number;
}

export function replayConformance(ctx: ReplayConformanceContext): void {
  const { receiveN, timeout } = ctx;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const capable = (): (Transport & DeadLetterCapability) | undefined => {
    const t = ctx.transport();
    return t.listDeadLetters && t.replayDeadLetters
      ? (t as Transport & DeadLetterCapability)
      : undefined;
  };
  /** Sends `bodies` and dead-letters each once. */
  async function deadLetter(t: Transport, bodies: readonly string[]) {
    await t.send(
      'task',
      bodies.map((body) => ({ body })),
    );
    const got = await receiveN('task', bodies.length);
    expect(got).toHaveLength(bodies.length);
    await t.settle(got.map((message) => ({ message, action: 'deadLetter', reason: 'Poisoned' })));
  }
  /** Lists dead letters until `count` are there (dead-lettering may land a moment later). */
  async function deadLetters(t: DeadLetterCapability, count: number, withinMs = 10_000) {
    const deadline = Date.now() + withinMs;
    let dead = await t.listDeadLetters('task', { limit: 32 });
    while (dead.length < count && Date.now() < deadline) {
      await sleep(100);
      dead = await t.listDeadLetters('task', { limit: 32 });
    }
    return dead;
  }

  it('replays each dead letter once while a worker dead-letters the copies again', {
    timeout: timeout * 2,
  }, async () => {
    const t = capable();
    if (!t) return;
    const bodies = Array.from({ length: 8 }, (_, i) => `poison-${i}-ünï🚂`);
    await deadLetter(t, bodies);
    expect(await deadLetters(t, 8)).toHaveLength(8);
    // A worker that fails every message it gets, running through the whole pass.
    let stop = false;
    let redeadLettered = 0;
    const worker = (async () => {
      while (!stop) {
        const got = await t.receive('task', {
          maxMessages: 8,
          visibilityTimeoutMs: ctx.visibilityMs,
          waitMs: 100,
        });
        if (got.length === 0) continue;
        await t.settle(got.map((message) => ({ message, action: 'deadLetter', reason: 'Again' })));
        redeadLettered += got.length;
      }
    })();
    const replayed = await t.replayDeadLetters('task');
    const deadline = Date.now() + ctx.visibilityMs + ctx.slackMs + 5000;
    while (redeadLettered < 8 && Date.now() < deadline) await sleep(50);
    stop = true;
    await worker;
    expect(replayed).toBe(8);
    expect(redeadLettered).toBe(8);
    const dead = await deadLetters(t, 8);
    expect(dead.map((d) => d.body).sort()).toEqual([...bodies].sort());
  });

  it('keeps the dead letters accept refuses, and honours limit and ids', { timeout }, async () => {
    const t = capable();
    if (!t) return;
    await deadLetter(t, ['a', 'b', 'c', 'd']);
    const listed = await deadLetters(t, 4);
    expect(listed).toHaveLength(4);
    const offered: string[] = [];
    const moved = await t.replayDeadLetters('task', {
      accept: async (letters) => {
        offered.push(...letters.map((l) => l.body));
        return letters.map((l) => l.body !== 'b');
      },
      ids: listed.filter((l) => l.body !== 'd').map((l) => l.id),
    });
    expect(moved).toBe(2);
    expect(offered.sort()).toEqual(['a', 'b', 'c']);
    const back = await receiveN('task', 2);
    expect(back.map((m) => m.body).sort()).toEqual(['a', 'c']);
    await t.settle(back.map((message) => ({ message, action: 'complete' })));
    const left = await t.listDeadLetters('task');
    expect(left.map((d) => d.body).sort()).toEqual(['b', 'd']);
    expect(left.find((d) => d.body === 'b')?.reason).toBe('Poisoned');
    expect(await t.replayDeadLetters('task', { limit: 1 })).toBe(1);
    expect((await t.listDeadLetters('task')).length).toBe(1);
  });

  it('replays bodies character for character', { timeout }, async () => {
    const t = capable();
    if (!t) return;
    const body = `{"q":"\\"quoted\\"","s":"ünï🚂 ∑ \\u00e9 <x>&amp;","n":[1e300,-0.0]}\r\n\t end`;
    await deadLetter(t, [body]);
    await deadLetters(t, 1);
    expect(await t.replayDeadLetters('task')).toBe(1);
    const [back] = await receiveN('task', 1);
    expect(back?.body).toBe(body);
    await t.settle([{ message: back!, action: 'complete' }]);
  });

  it('replays the largest body the transport carries (up to 300 KiB) byte for byte', {
    timeout,
  }, async () => {
    const t = capable();
    if (!t) return;
    const size = Math.min(t.limits.maxMessageBytes, 300 * 1024);
    const body = bodyOfBytes(size);
    expect(utf8Bytes(body)).toBe(size);
    await deadLetter(t, [body]);
    const [dead] = await deadLetters(t, 1);
    expect(dead?.body).toBe(body);
    expect(await t.replayDeadLetters('task')).toBe(1);
    const [back] = await receiveN('task', 1);
    expect(back?.body.length).toBe(body.length);
    expect(back?.body === body).toBe(true);
    await t.settle([{ message: back!, action: 'complete' }]);
    expect(await t.listDeadLetters('task')).toEqual([]);
  });
}

/**
 * A JSON-looking body of exactly `bytes` UTF-8 bytes that mixes characters of one to four bytes
 * and escapes (a re-encoding anywhere on the way changes its length or its content).
 */
function bodyOfBytes(bytes: number): string {
  const unit = 'aé€🚂"\\n';
  const open = '{"d":"';
  const close = '"}';
  const room = bytes - utf8Bytes(open) - utf8Bytes(close);
  const fill = unit.repeat(Math.floor(room / utf8Bytes(unit)));
  return `${open}${fill}${'x'.repeat(room - utf8Bytes(fill))}${close}`;
}

const utf8Bytes = (text: string) => new TextEncoder().encode(text).length;
