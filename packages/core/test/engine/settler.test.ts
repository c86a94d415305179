import { describe, expect, it } from 'vitest';
import { Settler } from '../../src/engine/worker/settler.js';
import { memoryTransport } from '../../src/memory/memory-transport.js';
import type { Settlement } from '../../src/transport.js';
import { RecordingLogger, RecordingTransport } from './fake-context.js';

describe('Settler', () => {
  it('settles concurrent messages in one call, each as asked', async () => {
    class CountingSettles extends RecordingTransport {
      calls: number[] = [];
      override settle(settlements: readonly Settlement[]): Promise<void> {
        this.calls.push(settlements.length);
        return super.settle(settlements);
      }
    }
    const transport = new CountingSettles(memoryTransport());
    await transport.send('task', [{ body: 'a' }, { body: 'b' }, { body: 'c' }]);
    const [a, b, c] = await transport.receive('task', { maxMessages: 3, visibilityTimeoutMs: 20 });
    const settler = new Settler(transport, 'memory', new RecordingLogger());
    await Promise.all([
      settler.settle(a!, { action: 'complete' }),
      settler.settle(b!, { action: 'deadLetter', reason: 'Bad' }),
      settler.settle(c!, { action: 'retry', delayMs: 0 }),
    ]);
    expect(transport.calls).toEqual([3]);
    expect((await transport.listDeadLetters('task')).map((d) => d.body)).toEqual(['b']);
    const back = await transport.receive('task', { maxMessages: 3, waitMs: 100 });
    expect(back.map((m) => [m.body, m.deliveryCount])).toEqual([['c', 2]]);
  });

  it('logs a failed settlement instead of throwing: the message comes back on its own', async () => {
    class FailingSettles extends RecordingTransport {
      override settle(): Promise<void> {
        return Promise.reject(new Error('link detached'));
      }
    }
    const transport = new FailingSettles(memoryTransport());
    await transport.send('task', [{ body: 'a' }]);
    const [a] = await transport.receive('task', { maxMessages: 1, visibilityTimeoutMs: 20 });
    const logger = new RecordingLogger();
    await new Settler(transport, 'memory', logger).settle(a!, { action: 'complete' });
    expect(logger.lines).toContainEqual(
      expect.objectContaining({
        level: 'error',
        fields: { transport: 'memory', error: 'link detached' },
      }),
    );
    const back = await transport.receive('task', { maxMessages: 1, waitMs: 200 });
    expect(back.map((m) => m.deliveryCount)).toEqual([2]);
  });
});
