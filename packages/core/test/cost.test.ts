import { describe, expect, it } from 'vitest';
import { type Transport, withCost } from '../src/driver.js';
import { memoryTransport, type TransportMetrics } from '../src/index.js';

function metricsOf(transport: string, tasks: number): TransportMetrics {
  return {
    transport,
    jobs: { total: 1, queued: 0, running: 0, succeeded: 1, failed: 0, cancelled: 0 },
    jobLatencyMs: { mean: 1, p95: 1 },
    queueWaitMs: { mean: 1, p95: 1 },
    tasksPerSecond: 1,
    tasks: { total: tasks, succeeded: tasks, failed: 0 },
    retries: 0,
    timeouts: 0,
    poisoned: 0,
    redrives: {},
  };
}

describe('withCost', () => {
  it('adds usage per task and the cost per million tasks from the path transport', async () => {
    const priced: Transport = {
      ...memoryTransport({ name: 'priced' }),
      name: 'priced',
      usage: () => ({ operations: { send: 300, receive: 300 }, billable: 600, throttled: 2 }),
      estimateCost: (u) => ({
        currency: 'USD',
        amount: u.billable * 1e-6,
        basis: '$1 per million',
      }),
    };
    const [out] = withCost([metricsOf('priced', 200)], [priced]);
    expect(out!.usage).toEqual({
      operations: { send: 300, receive: 300 },
      billableOperations: 600,
      throttled: 2,
      perTask: 3,
    });
    expect(out!.cost?.currency).toBe('USD');
    expect(out!.cost?.amount).toBeCloseTo(0.0006, 10);
    expect(out!.cost?.perMillionTasks).toBeCloseTo(3, 10); // 3 operations per task at $1 per million
  });

  it('leaves paths without a counting transport unchanged and does not modify its input', async () => {
    const memory = memoryTransport();
    await memory.send('task', [{ body: 'x' }]);
    const input = [metricsOf('memory', 0), metricsOf('elsewhere', 5)];
    const out = withCost(input, [memory]);
    expect(out[0]!.usage).toMatchObject({ billableOperations: 1, perTask: null });
    expect(out[0]!.cost).toBeUndefined(); // the memory transport has no prices
    expect(out[1]).toBe(input[1]);
    expect(input[0]!.usage).toBeUndefined();
    await memory.close();
  });

  it('divides by the executions the counted operations paid for, when given', () => {
    const priced: Transport = {
      ...memoryTransport({ name: 'priced' }),
      name: 'priced',
      usage: () => ({ operations: { ping: 1 }, billable: 1, throttled: 0 }),
      estimateCost: (u) => ({
        currency: 'USD',
        amount: u.billable * 1e-6,
        basis: '$1 per million',
      }),
    };
    // A process that ran none of the store's 1,000 tasks: no per-task figure, not 1/1,000.
    const [idle] = withCost([metricsOf('priced', 1000)], [priced], { executions: () => 0 });
    expect(idle!.usage).toMatchObject({ billableOperations: 1, perTask: null });
    expect(idle!.cost).toMatchObject({ amount: 1e-6, perMillionTasks: null });
    const [ran] = withCost([metricsOf('priced', 1000)], [priced], {
      executions: (name) => (name === 'priced' ? 4 : 0),
    });
    expect(ran!.usage?.perTask).toBe(0.25);
    expect(ran!.cost?.perMillionTasks).toBeCloseTo(0.25, 10);
  });
});
