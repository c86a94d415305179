import type { JobView, TransportMetrics } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { metricsTable, stageLines } from '../src/render.js';

const base: TransportMetrics = {
  transport: 'servicebus',
  jobs: { total: 1, queued: 0, running: 0, succeeded: 1, failed: 0, cancelled: 0 },
  jobLatencyMs: { mean: 10, p95: 10 },
  queueWaitMs: { mean: 1, p95: 2 },
  tasksPerSecond: 100,
  tasks: { total: 1000, succeeded: 1000, failed: 0 },
  retries: 0,
  timeouts: 0,
  poisoned: 0,
  redrives: {},
};

describe('metricsTable', () => {
  it('shows billable operations per task, throttling and cost per million tasks when known', () => {
    const priced: TransportMetrics = {
      ...base,
      usage: { operations: { send: 10 }, billableOperations: 33, throttled: 4, perTask: 0.033 },
      cost: { currency: 'USD', amount: 0.0000264, perMillionTasks: 0.0264, basis: 'list prices' },
    };
    const unpriced: TransportMetrics = { ...base, transport: 'postgres' };
    const lines = metricsTable([priced, unpriced]).split('\n');
    expect(lines.find((l) => l.startsWith('billable ops/task'))).toMatch(/0\.033\s+-$/);
    expect(lines.find((l) => l.startsWith('throttled'))).toMatch(/4\s+-$/);
    expect(lines.find((l) => l.startsWith('cost per 1M tasks'))).toMatch(/\$0\.0264\s+-$/);
  });

  it('shows every path that reports usage, whatever its name', () => {
    const postgres: TransportMetrics = {
      ...base,
      transport: 'postgres',
      usage: {
        operations: { send: 10, receive: 20, complete: 10 },
        billableOperations: 40,
        throttled: 0,
        perTask: 0.04,
      },
      cost: { currency: 'USD', amount: 0.0000089, perMillionTasks: 0.0089, basis: 'busy time' },
    };
    const lines = metricsTable([base, postgres]).split('\n');
    expect(lines[0]).toMatch(/^metric\s+servicebus\s+postgres$/);
    expect(lines.find((l) => l.startsWith('billable ops/task'))).toMatch(/-\s+0\.040$/);
    expect(lines.find((l) => l.startsWith('throttled'))).toMatch(/-\s+0$/);
    expect(lines.find((l) => l.startsWith('cost per 1M tasks'))).toMatch(/-\s+\$0\.0089$/);
  });

  it('shows what open tasks wait for: their window, a key slot, a rate limit', () => {
    const waiting: TransportMetrics = {
      ...base,
      waitingForWindow: 97_952,
      waiting: { concurrency: 12, rateLimit: 3 },
    };
    const lines = metricsTable([waiting, { ...base, transport: 'postgres' }]).split('\n');
    expect(lines.find((l) => l.startsWith('waiting for window'))).toMatch(/97952\s+-$/);
    expect(lines.find((l) => l.startsWith('waiting for key slot'))).toMatch(/12\s+-$/);
    expect(lines.find((l) => l.startsWith('waiting for rate limit'))).toMatch(/3\s+-$/);
  });
});

describe('stageLines', () => {
  it("says how many of a cancelled job's tasks the cancel ended", () => {
    const job = {
      stages: [
        {
          index: 0,
          name: 'greet',
          status: 'sealed',
          total: 300,
          sealed: true,
          pending: 0,
          running: 0,
          succeeded: 12,
          failed: 1,
          cancelled: 287,
        },
      ],
    } as unknown as JobView;
    expect(stageLines(job, false)).toEqual(['greet         13/300  sealed failed 1 cancelled 287']);
  });
});
