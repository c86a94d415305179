/**
 * The part of the transport conformance suite about fairness keys: a transport that declares
 * `fairness` receives a key's message waiting behind many of another key's next, and keeps the key
 * through a retry; one that does not accepts the key and delivers every message all the same. Run
 * by {@link transportConformance}.
 * @module
 */
import { expect, it } from 'vitest';
import type { ReceivedMessage } from '../transport.js';
import type { PriorityConformanceContext } from './priority-conformance.js';

export function fairnessConformance(ctx: PriorityConformanceContext): void {
  const { timeout } = ctx;

  /** Receives one message at a time, `count` of them, settling each with `action(message)`. */
  async function receiveEach(
    count: number,
    action: (m: ReceivedMessage) => 'complete' | 'retry' = () => 'complete',
  ): Promise<string[]> {
    const t = ctx.transport();
    const bodies: string[] = [];
    const deadline = Date.now() + ctx.visibilityMs * 5 + ctx.slackMs * 5;
    while (bodies.length < count && Date.now() < deadline) {
      const [message] = await t.receive('task', {
        maxMessages: 1,
        visibilityTimeoutMs: 30_000,
        waitMs: 500,
      });
      if (!message) continue;
      bodies.push(message.body);
      await t.settle([
        action(message) === 'retry'
          ? { message, action: 'retry', delayMs: 0 }
          : { message, action: 'complete' },
      ]);
    }
    return bodies;
  }

  it('serves fairness keys in turn when it declares fairness, and delivers every message either way', {
    timeout,
  }, async () => {
    const t = ctx.transport();
    await t.send(
      'task',
      Array.from({ length: 12 }, (_, i) => ({
        body: `big-${i}`,
        messageId: `big-${i}`,
        fairnessKey: 'big',
      })),
    );
    await t.send('task', [{ body: 'small-0', messageId: 'small-0', fairnessKey: 'small' }]);
    const bodies = await receiveEach(13);
    expect(new Set(bodies).size, bodies.join(' ')).toBe(13);
    if (!t.fairness) return;
    expect(bodies.indexOf('small-0'), bodies.join(' ')).toBeLessThanOrEqual(1);
    // Each key's messages keep their order.
    const big = bodies.filter((b) => b.startsWith('big-'));
    expect(big).toEqual(Array.from({ length: 12 }, (_, i) => `big-${i}`));
  });

  it('keeps a message’s fairness key through a retry', { timeout }, async () => {
    const t = ctx.transport();
    await t.send(
      'task',
      Array.from({ length: 6 }, (_, i) => ({
        body: `a-${i}`,
        messageId: `a-${i}`,
        fairnessKey: 'a',
      })),
    );
    await t.send('task', [{ body: 'b-0', messageId: 'b-0', fairnessKey: 'b' }]);
    let retried = false;
    const bodies = await receiveEach(8, (m) => {
      if (m.body !== 'b-0' || retried) return 'complete';
      retried = true;
      return 'retry';
    });
    expect(
      bodies.filter((b) => b === 'b-0'),
      bodies.join(' '),
    ).toHaveLength(2);
    if (!t.fairness) return;
    // b-0 is received within its key's turns both times: second, then again two receives later.
    const [first, second] = bodies.flatMap((b, i) => (b === 'b-0' ? [i] : []));
    expect(first, bodies.join(' ')).toBeLessThanOrEqual(1);
    expect(second! - first!, bodies.join(' ')).toBeLessThanOrEqual(2);
  });
}
