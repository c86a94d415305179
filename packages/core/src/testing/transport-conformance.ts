import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { QueueKind, ReceivedMessage, Transport } from '../transport.js';
import { fairnessConformance } from './fairness-conformance.js';
import { priorityConformance } from './priority-conformance.js';
import { replayConformance } from './replay-conformance.js';

export interface TransportConformanceOptions {
  /**
   * Lock / visibility duration the suite relies on, in ms. The factory must create queues whose
   * messages come back this long after an unsettled receive (the suite also passes it as
   * `visibilityTimeoutMs`). Default 1000.
   */
  visibilityMs?: number;
  /** Extra slack for slow emulators when waiting for a redelivery, in ms. Default 2000. */
  slackMs?: number;
  /** Per-test timeout, ms. Default 30000. */
  testTimeoutMs?: number;
  /**
   * What `usage()` counts one operation: `'message'` — each message sent, received or settled (as
   * Service Bus and Storage Queues bill) — or `'call'` — each call that reached the backend, however
   * many messages it carried (PostgreSQL's statements). The usage test expects at least one per
   * message, or one per call. Default `'message'`.
   */
  usageUnit?: 'message' | 'call';
}

/**
 * The suite every transport driver passes against its real backend. `factory` is called before
 * each test and must return a transport on fresh, empty queues, with its priority lanes on; it is
 * closed after the test.
 *
 * @example
 * ```ts
 * transportConformance('memory', () => memoryTransport());
 * ```
 */
export function transportConformance(
  name: string,
  factory: () => Transport | Promise<Transport>,
  options: TransportConformanceOptions = {},
): void {
  const visibilityMs = options.visibilityMs ?? 1000;
  const slackMs = options.slackMs ?? 2000;
  const timeout = options.testTimeoutMs ?? 30_000;
  const usageUnit = options.usageUnit ?? 'message';

  describe(`transport conformance: ${name}`, () => {
    let transport: Transport;
    beforeEach(async () => {
      transport = await factory();
    });
    afterEach(async () => {
      await transport.close();
    });

    /** Receives until `count` messages arrived or `withinMs` passed. */
    async function receiveN(queue: QueueKind, count: number, withinMs = visibilityMs + slackMs) {
      const got: ReceivedMessage[] = [];
      const deadline = Date.now() + withinMs;
      while (got.length < count && Date.now() < deadline) {
        const batch = await transport.receive(queue, {
          maxMessages: Math.min(count - got.length, transport.limits.maxReceiveMessages),
          visibilityTimeoutMs: visibilityMs,
          waitMs: Math.min(500, Math.max(1, deadline - Date.now())),
        });
        got.push(...batch);
      }
      return got;
    }

    async function expectNothing(queue: QueueKind, forMs: number) {
      const got = await receiveN(queue, 1, forMs);
      expect(got.map((m) => m.body)).toEqual([]);
    }

    it('reports sane limits', () => {
      const l = transport.limits;
      expect(typeof transport.name).toBe('string');
      expect(l.maxMessageBytes).toBeGreaterThanOrEqual(16 * 1024);
      expect(l.maxBatchMessages).toBeGreaterThanOrEqual(1);
      expect(l.maxBatchBytes).toBeGreaterThanOrEqual(l.maxMessageBytes);
      expect(l.sendConcurrency).toBeGreaterThanOrEqual(1);
      expect(l.maxReceiveMessages).toBeGreaterThanOrEqual(1);
    });

    it('counts billable operations (usage) and prices them (estimateCost), where offered', {
      timeout,
    }, async () => {
      if (!transport.usage) return; // optional capability
      const before = transport.usage();
      await transport.send('task', [{ body: 'u-1' }, { body: 'u-2' }, { body: 'u-3' }]);
      const got = await receiveN('task', 3);
      expect(got).toHaveLength(3);
      await transport.settle(got.map((message) => ({ message, action: 'complete' as const })));
      const after = transport.usage();
      // Per message: at least one per message sent and settled, and one for the receive(s). Per
      // call: at least the send, a receive and the settle.
      expect(after.billable - before.billable).toBeGreaterThanOrEqual(
        usageUnit === 'message' ? 7 : 3,
      );
      const sum = Object.values(after.operations).reduce((a, b) => a + b, 0);
      expect(sum).toBeGreaterThanOrEqual(after.billable - before.billable);
      expect(after.throttled).toBeGreaterThanOrEqual(0);
      // A snapshot: what was returned does not move afterwards.
      expect(before.billable).toBeLessThan(after.billable);
      if (transport.estimateCost) {
        const small = transport.estimateCost(before);
        const large = transport.estimateCost(after);
        expect(large.currency).toMatch(/^[A-Z]{3}$/);
        expect(large.amount).toBeGreaterThanOrEqual(small.amount);
        expect(large.amount).toBeGreaterThanOrEqual(0);
        expect(large.basis.length).toBeGreaterThan(0);
      }
    });

    it('round-trips a body on each queue, separately, with delivery count 1', {
      timeout,
    }, async () => {
      const body = JSON.stringify({ hello: 'wörld ✓ 🚂', n: 1 });
      await transport.send('stage', [{ body, messageId: 'm-stage' }]);
      await transport.send('task', [{ body: 'task-body' }]);
      const [stageMsg] = await receiveN('stage', 1);
      expect(stageMsg?.body).toBe(body);
      expect(stageMsg?.queue).toBe('stage');
      expect(stageMsg?.deliveryCount).toBe(1);
      const [taskMsg] = await receiveN('task', 1);
      expect(taskMsg?.body).toBe('task-body');
      expect(taskMsg?.queue).toBe('task');
      await transport.settle([
        { message: stageMsg!, action: 'complete' },
        { message: taskMsg!, action: 'complete' },
      ]);
    });

    it('keeps awkward bodies intact in one batch', { timeout }, async () => {
      const bodies = ['NULL', ' ', '"', '\\', '{a,b}', 'x\\"y', 'ünï🚂', 'null', '{"k":"v\\"w"}'];
      await transport.send(
        'task',
        bodies.map((body) => ({ body })),
      );
      const got = await receiveN('task', bodies.length);
      expect(got.map((m) => m.body).sort()).toEqual([...bodies].sort());
      await transport.settle(got.map((message) => ({ message, action: 'complete' as const })));
    });

    it('delivers every message of a full batch exactly once when completed', {
      timeout,
    }, async () => {
      const n = Math.min(transport.limits.maxBatchMessages, 100);
      const messages = Array.from({ length: n }, (_, i) => ({ body: `b-${i}` }));
      await transport.send('task', messages);
      const got = await receiveN('task', n, 10_000);
      expect(got.map((m) => m.body).sort()).toEqual(messages.map((m) => m.body).sort());
      await transport.settle(got.map((message) => ({ message, action: 'complete' as const })));
      await expectNothing('task', visibilityMs + 500);
    });

    it('redelivers an unsettled message after the visibility timeout, delivery count + 1', {
      timeout,
    }, async () => {
      await transport.send('task', [{ body: 'crash-me' }]);
      const [first] = await receiveN('task', 1);
      expect(first?.deliveryCount).toBe(1);
      // Not settled: as if the worker crashed. Invisible meanwhile …
      await expectNothing('task', Math.min(300, visibilityMs / 2));
      // … and back after the timeout.
      const [second] = await receiveN('task', 1, visibilityMs + slackMs + 1000);
      expect(second?.body).toBe('crash-me');
      expect(second?.deliveryCount).toBe(2);
      await transport.settle([{ message: second!, action: 'complete' }]);
    });

    it('retries a message after the requested delay', { timeout }, async () => {
      await transport.send('task', [{ body: 'retry-me' }]);
      const [first] = await receiveN('task', 1);
      const settledAt = Date.now();
      await transport.settle([{ message: first!, action: 'retry', delayMs: 1000 }]);
      const [again] = await receiveN('task', 1, 1000 + slackMs + 1000);
      expect(again?.body).toBe('retry-me');
      expect(Date.now() - settledAt).toBeGreaterThanOrEqual(900);
      await transport.settle([{ message: again!, action: 'complete' }]);
    });

    it('delays delivery of a message sent with delayMs', { timeout }, async () => {
      const sentAt = Date.now();
      await transport.send('stage', [{ body: 'later', delayMs: 1000 }]);
      const [msg] = await receiveN('stage', 1, 1000 + slackMs + 1000);
      expect(msg?.body).toBe('later');
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(900);
      await transport.settle([{ message: msg!, action: 'complete' }]);
    });

    it('dead-letters with a reason and never redelivers', { timeout }, async () => {
      await transport.send('task', [{ body: 'poison' }]);
      const [msg] = await receiveN('task', 1);
      await transport.settle([
        { message: msg!, action: 'deadLetter', reason: 'TestPoison', description: 'always fails' },
      ]);
      await expectNothing('task', visibilityMs + 500);
      if (transport.listDeadLetters && transport.replayDeadLetters) {
        const dead = await transport.listDeadLetters('task');
        expect(dead).toHaveLength(1);
        expect(dead[0]?.body).toBe('poison');
        expect(dead[0]?.reason).toBe('TestPoison');
        expect(await transport.replayDeadLetters('task')).toBe(1);
        const [back] = await receiveN('task', 1);
        expect(back?.body).toBe('poison');
        await transport.settle([{ message: back!, action: 'complete' }]);
        expect(await transport.listDeadLetters('task')).toHaveLength(0);
      }
    });

    it('applies differing settlements in one call each as asked', { timeout }, async () => {
      await transport.send('task', [{ body: 'a' }, { body: 'b' }, { body: 'c' }, { body: 'd' }]);
      const got = await receiveN('task', 4);
      const byBody = new Map(got.map((m) => [m.body, m]));
      await transport.settle([
        { message: byBody.get('a')!, action: 'complete' },
        { message: byBody.get('b')!, action: 'retry', delayMs: 0 },
        { message: byBody.get('c')!, action: 'complete' },
        { message: byBody.get('d')!, action: 'deadLetter', reason: 'Mixed' },
      ]);
      const again = await receiveN('task', 1, visibilityMs + slackMs);
      expect(again.map((m) => m.body)).toEqual(['b']);
      await transport.settle([{ message: again[0]!, action: 'complete' }]);
      // a and c completed, d dead-lettered, b completed now: nothing comes back.
      await expectNothing('task', visibilityMs + 500);
    });

    it('keeps a message invisible while its lock is extended', { timeout }, async () => {
      if (!transport.extendLock) return;
      await transport.send('task', [{ body: 'long-task' }]);
      const [msg] = await receiveN('task', 1);
      // Each extension outlasts the check after it twice over: a check's last poll and a slow
      // backend call may run past it (Storage counts visibility in whole seconds).
      const until = Date.now() + visibilityMs * 2.5;
      while (Date.now() < until) {
        await transport.extendLock(msg!, visibilityMs * 2);
        await expectNothing('task', visibilityMs / 2);
      }
      await transport.settle([{ message: msg!, action: 'complete' }]);
      await expectNothing('task', visibilityMs + 500);
    });

    // A worker renews the locks of the messages it holds on a timer, whatever stage their
    // processing is at, so a message's settlement may be asked for while an extension of its lock
    // is still under way. The settlement must apply all the same: a completion lost would deliver
    // the message again (a used-up delivery, a task run twice), a dead-letter lost would leave two
    // dead letters. (The extension itself may fail: a worker ignores a failed renewal.)
    it('applies a settlement asked for while a lock extension is under way', {
      timeout,
    }, async () => {
      if (!transport.extendLock) return;
      const bodies = Array.from({ length: 16 }, (_, i) => `x-${i}`);
      await transport.send(
        'task',
        bodies.map((body) => ({ body })),
      );
      const got = await receiveN('task', bodies.length);
      expect(got).toHaveLength(bodies.length);
      const extensions = got.map((message) =>
        transport.extendLock!(message, visibilityMs).catch(() => undefined),
      );
      await transport.settle(
        got.map((message, i) =>
          i % 4 === 3
            ? { message, action: 'deadLetter' as const, reason: 'Raced' }
            : { message, action: 'complete' as const },
        ),
      );
      await Promise.all(extensions);
      // An extension that won would have hidden a lost settlement for visibilityMs at most.
      await expectNothing('task', visibilityMs + slackMs);
      if (transport.listDeadLetters) {
        const dead = await transport.listDeadLetters('task');
        expect(dead.map((d) => d.body).sort()).toEqual(
          got
            .filter((_, i) => i % 4 === 3)
            .map((m) => m.body)
            .sort(),
        );
      }
    });

    it('carries a body of maxMessageBytes', { timeout }, async () => {
      const size = Math.min(transport.limits.maxMessageBytes, 1024 * 1024);
      const body = 'x'
        .repeat(size - 2)
        .padStart(size - 1, '{')
        .padEnd(size, '}');
      await transport.send('task', [{ body }]);
      const [msg] = await receiveN('task', 1);
      expect(msg?.body.length).toBe(size);
      expect(msg?.body).toBe(body);
      await transport.settle([{ message: msg!, action: 'complete' }]);
    });

    it('returns an empty array when idle, and honours an abort signal', { timeout }, async () => {
      const started = Date.now();
      expect(await transport.receive('stage', { maxMessages: 5, waitMs: 200 })).toEqual([]);
      expect(Date.now() - started).toBeLessThan(5000);
      const controller = new AbortController();
      const pending = transport.receive('stage', {
        maxMessages: 5,
        waitMs: 20_000,
        abortSignal: controller.signal,
      });
      setTimeout(() => controller.abort(), 100);
      const t0 = Date.now();
      const result = await pending.catch(() => []);
      expect(result).toEqual([]);
      expect(Date.now() - t0).toBeLessThan(5000);
    });

    const parts = { transport: () => transport, receiveN, visibilityMs, slackMs, timeout };
    replayConformance(parts);
    priorityConformance(parts);
    fairnessConformance(parts);
  });
}
