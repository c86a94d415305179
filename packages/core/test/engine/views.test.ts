import { describe, expect, it } from 'vitest';
import { toJobView } from '../../src/engine/views.js';
import type { JobRecord, StageRecord } from '../../src/store.js';
import { testJob } from './fake-context.js';

const t0 = new Date('2026-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(t0.getTime() + ms);
const job = testJob({
  name: 'view',
  stages: [{ name: 'split' }, { name: 'merge' }, { name: 'report' }],
});

const record = (overrides: Partial<JobRecord> = {}): JobRecord => ({
  id: 'view-1',
  name: 'view',
  params: { inputs: [] },
  transport: 'memory',
  status: 'running',
  currentStage: 1,
  stageCount: 3,
  createdAt: t0,
  startedAt: at(10),
  updatedAt: at(500),
  ...overrides,
});

const stage = (overrides: Partial<StageRecord>): StageRecord => ({
  jobId: 'view-1',
  index: 0,
  name: 'split',
  status: 'sealed',
  total: 10,
  created: 10,
  succeeded: 0,
  failed: 0,
  released: null,
  running: 0,
  startedAt: at(10),
  ...overrides,
});

describe('toJobView', () => {
  it('reports counts per stage: pending is what is neither finished nor running', () => {
    const view = toJobView({
      job: record(),
      stages: [
        stage({ status: 'complete', succeeded: 9, failed: 1, completedAt: at(110) }),
        stage({
          index: 1,
          name: 'merge',
          status: 'fanning_out',
          total: null,
          created: 6,
          succeeded: 2,
          failed: 1,
          running: 2,
          startedAt: at(120),
        }),
      ],
      def: job,
    });
    expect(view.currentStage).toEqual({ index: 1, name: 'merge' });
    expect(view.stages[0]).toMatchObject({
      status: 'complete',
      total: 10,
      sealed: true,
      pending: 0,
      running: 0,
      durationMs: 100,
    });
    expect(view.stages[1]).toMatchObject({
      status: 'fanning_out',
      total: 6,
      sealed: false,
      pending: 1,
      running: 2,
      succeeded: 2,
      failed: 1,
    });
    expect(view.stages[1]!.completedAt).toBeUndefined();
    expect(view.stages[2]).toEqual({
      index: 2,
      name: 'report',
      status: 'waiting',
      total: 0,
      sealed: false,
      pending: 0,
      running: 0,
      succeeded: 0,
      failed: 0,
    });
    expect(view).not.toHaveProperty('finishedAt');
    expect(view).not.toHaveProperty('result');
  });

  it('says how many of a windowed open stage’s tasks wait for the window, and nothing once it is complete', () => {
    const view = toJobView({
      job: record(),
      stages: [
        stage({ status: 'complete', succeeded: 10, released: 10, completedAt: at(110) }),
        stage({ index: 1, name: 'merge', created: 10, succeeded: 3, running: 2, released: 7 }),
      ],
      def: job,
    });
    expect(view.stages[0]?.waitingForWindow).toBeUndefined();
    expect(view.stages[1]).toMatchObject({ pending: 5, waitingForWindow: 3 });
    expect(
      toJobView({ job: record(), stages: [stage({})], def: job }).stages[0]?.waitingForWindow,
    ).toBeUndefined();
  });

  it('never reports more running than the unfinished tasks (the running count is best effort)', () => {
    const view = toJobView({
      job: record({ currentStage: 0 }),
      stages: [stage({ succeeded: 8, running: 5 })],
      def: job,
    });
    expect(view.stages[0]).toMatchObject({ running: 2, pending: 0 });
  });

  it('reports a finished job’s duration, result and error', () => {
    const done = toJobView({
      job: record({ status: 'succeeded', finishedAt: at(2000), result: { n: 1 } }),
      stages: [],
      def: job,
    });
    expect(done).toMatchObject({ status: 'succeeded', durationMs: 2000, result: { n: 1 } });
    const failed = toJobView({
      job: record({
        status: 'failed',
        finishedAt: at(50),
        error: { name: 'JobFailedError', message: 'x', code: 'JOB_FAILED' },
      }),
      stages: [],
      def: job,
    });
    expect(failed.error).toEqual({ name: 'JobFailedError', message: 'x', code: 'JOB_FAILED' });
  });

  it('names stages from the record, else the definition, else by index; none current before the start', () => {
    const view = toJobView({ job: record({ currentStage: -1, stageCount: 2 }), stages: [] });
    expect(view.stages.map((s) => s.name)).toEqual(['stage-0', 'stage-1']);
    expect(view).not.toHaveProperty('currentStage');
    expect(
      toJobView({ job: record({ currentStage: -1 }), stages: [], def: job }).stages.map(
        (s) => s.name,
      ),
    ).toEqual(['split', 'merge', 'report']);
  });
});
