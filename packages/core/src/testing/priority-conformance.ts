/**
 * The part of the transport conformance suite about priority lanes: a transport that keeps them
 * reads higher lanes first and still serves the lowest while higher ones stay busy, and a
 * message keeps its lane through a retry and a dead-letter replay. Run by
 * {@link transportConformance}.
 * @module
 */
import { expect, it } from 'vitest';
import { isSwitchyardError } from '../errors.js';
import { PRIORITIES, type Priority } from '../priority.js';
import type { QueueKind, ReceivedMessage, Transport } from '../transport.js';

export interface PriorityConformanceContext {
  transport: () => Transport;
  receiveN: (queue: QueueKind, count: number, withinMs?: number) => Promise<ReceivedMessage[]>;
  visibilityMs: number;
  slackMs: number;
  timeout: number;
}

export function priorityConformance(ctx: PriorityConformanceContext): void {
  const { receiveN, timeout } = ctx;
  /** The lane a body was sent to: bodies are `<lane>-<n>`. */
  const laneOf = (m: ReceivedMessage) => m.body.split('-')[0] as Priority;

  it('keeps a lane per priority: higher first, the lowest still served while higher ones are busy', {
    timeout,
  }, async () => {
    const t = ctx.transport();
    expect(t.priorities, 'a conformance factory must turn the transport’s lanes on').toBe(true);
    // Lowest first, so first-in-first-out alone would hand out `low` first.
    for (const lane of [...PRIORITIES].reverse()) {
      await t.send(
        'task',
        Array.from({ length: 10 }, (_, i) => ({
          body: `${lane}-${i}`,
          messageId: `${lane}-${i}`,
          // `normal` is the default: sent without a priority, as most messages are.
          ...(lane === 'normal' ? {} : { priority: lane }),
        })),
      );
    }
    // Ten receives of one message each while every lane has plenty.
    const got: ReceivedMessage[] = [];
    const deadline = Date.now() + ctx.visibilityMs * 5 + ctx.slackMs * 5;
    while (got.length < 10 && Date.now() < deadline) {
      const [message] = await t.receive('task', {
        maxMessages: 1,
        visibilityTimeoutMs: 30_000,
        waitMs: 500,
      });
      if (!message) continue;
      got.push(message);
      await t.settle([{ message, action: 'complete' }]);
    }
    expect(got).toHaveLength(10);
    for (const m of got) expect(m.priority, m.body).toBe(laneOf(m));
    const lanes = got.map(laneOf);
    expect(lanes[0]).toBe('high');
    const count = (lane: Priority) => lanes.filter((l) => l === lane).length;
    expect(count('high'), lanes.join(' ')).toBeGreaterThanOrEqual(5);
    expect(count('low'), lanes.join(' ')).toBeGreaterThanOrEqual(1);
    // Then every message left is still delivered, once.
    const rest = await receiveN('task', 20);
    expect(new Set([...got, ...rest].map((m) => m.body)).size).toBe(30);
    await t.settle(rest.map((message) => ({ message, action: 'complete' })));
  });

  it('refuses a batch with a priority that is no lane, naming the field, and sends none of it', {
    timeout,
  }, async () => {
    const t = ctx.transport();
    const err = await t
      .send('task', [
        { body: 'fine', messageId: 'fine' },
        { body: 'odd', messageId: 'odd', priority: 'urgent' as Priority },
      ])
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isSwitchyardError(err) && err.code).toBe('INVALID_INPUT');
    expect(JSON.stringify((err as { issues?: unknown }).issues)).toContain('messages[1].priority');
    await expect(receiveN('task', 1, 500)).resolves.toEqual([]);
  });

  it('keeps a message in its lane through a retry and a dead-letter replay', {
    timeout,
  }, async () => {
    const t = ctx.transport();
    await t.send('task', [{ body: 'low-0', messageId: 'low-0', priority: 'low' }]);
    const [first] = await receiveN('task', 1);
    expect(first?.priority).toBe('low');
    await t.settle([{ message: first!, action: 'retry', delayMs: 0 }]);
    const [retried] = await receiveN('task', 1);
    expect(retried?.body).toBe('low-0');
    expect(retried?.priority).toBe('low');
    if (!t.replayDeadLetters) {
      await t.settle([{ message: retried!, action: 'complete' }]);
      return;
    }
    await t.settle([{ message: retried!, action: 'deadLetter', reason: 'Poisoned' }]);
    // Dead-lettering may land a moment after the settle resolves.
    let moved = 0;
    for (let i = 0; i < 50 && moved === 0; i++) {
      moved = await t.replayDeadLetters('task');
      if (moved === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(moved).toBe(1);
    const [replayed] = await receiveN('task', 1);
    expect(replayed?.body).toBe('low-0');
    expect(replayed?.priority).toBe('low');
    await t.settle([{ message: replayed!, action: 'complete' }]);
  });
}
