import { isSwitchyardError, parseInstant } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import {
  parseJobFilterBody,
  parseListJobsQuery,
  parsePurgeBody,
  parseRetryBody,
} from '../src/http/operations-params.js';

const issuesOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (isSwitchyardError(err) && err.code === 'INVALID_INPUT')
      return (err.issues ?? []).map((i) => i.path).sort();
    throw err;
  }
  throw new Error('expected INVALID_INPUT');
};

describe('HTTP operations input', () => {
  it('parses a job list query, several statuses included', () => {
    const q = new URLSearchParams(
      'status=failed,cancelled&name=etl&transport=postgres&createdAfter=2026-01-01T00:00:00Z&limit=20&cursor=abc',
    );
    expect(parseListJobsQuery(q)).toEqual({
      status: ['failed', 'cancelled'],
      name: 'etl',
      transport: 'postgres',
      createdAfter: new Date('2026-01-01T00:00:00Z'),
      limit: 20,
      cursor: 'abc',
    });
    expect(parseListJobsQuery(new URLSearchParams('status=failed&status=running')).status).toEqual([
      'failed',
      'running',
    ]);
    expect(parseListJobsQuery(new URLSearchParams(''))).toEqual({});
    expect(parseListJobsQuery(new URLSearchParams('priority=high'))).toEqual({ priority: 'high' });
    expect(issuesOf(() => parseListJobsQuery(new URLSearchParams('priority=urgent')))).toEqual([
      'priority',
    ]);
  });

  it('names every bad query parameter', () => {
    expect(
      issuesOf(() =>
        parseListJobsQuery(
          new URLSearchParams('status=done&limit=501&createdBefore=yesterday&created_after=x'),
        ),
      ),
    ).toEqual(['createdBefore', 'created_after', 'limit', 'status']);
    // Only ISO 8601, not whatever Date.parse guesses at.
    expect(issuesOf(() => parseListJobsQuery(new URLSearchParams('createdAfter=1')))).toEqual([
      'createdAfter',
    ]);
    expect(parseListJobsQuery(new URLSearchParams('status=scheduled')).status).toEqual([
      'scheduled',
    ]);
    expect(issuesOf(() => parseListJobsQuery(new URLSearchParams('limit=0')))).toEqual(['limit']);
  });

  it('parses retry and bulk filter bodies, refusing unknown fields', () => {
    expect(parseRetryBody({ stage: 'work', taskIds: ['j.0.1'] })).toEqual({
      stage: 'work',
      taskIds: ['j.0.1'],
    });
    expect(parseRetryBody(undefined)).toEqual({});
    expect(
      issuesOf(() => parseRetryBody({ stage: -1, taskIds: 'j.0.1', task_ids: [], x: 1 })),
    ).toEqual(['stage', 'taskIds', 'task_ids', 'x']);
    expect(issuesOf(() => parseRetryBody({ taskIds: [] }))).toEqual(['taskIds']);
    expect(parseJobFilterBody({ status: 'failed', name: 'etl' })).toEqual({
      status: ['failed'],
      name: 'etl',
    });
    expect(issuesOf(() => parseJobFilterBody([]))).toEqual(['']);
    // An empty filter would act on every job.
    expect(issuesOf(() => parseJobFilterBody({}))).toEqual(['']);
    expect(
      issuesOf(() => parseJobFilterBody({ status: 'failed' }, { statuses: ['queued'] })),
    ).toEqual(['status']);
  });

  it('parses a purge body from a retention-style age or a date', () => {
    const now = new Date('2026-06-10T00:00:00Z');
    expect(parsePurgeBody({ status: 'succeeded', olderThan: '7d' }, now)).toEqual({
      status: ['succeeded'],
      finishedBefore: new Date('2026-06-03T00:00:00Z'),
    });
    expect(parsePurgeBody({ finishedBefore: '2026-01-01T00:00:00Z', limit: 10 }, now)).toEqual({
      finishedBefore: new Date('2026-01-01T00:00:00Z'),
      limit: 10,
    });
    // A status alone purges what finished before now.
    expect(parsePurgeBody({ status: 'cancelled' }, now)).toEqual({
      status: ['cancelled'],
      finishedBefore: now,
    });
    expect(issuesOf(() => parsePurgeBody({ status: 'running' }, now))).toEqual(['status']);
    expect(issuesOf(() => parsePurgeBody({ name: 'etl' }, now))).toEqual(['']);
    expect(issuesOf(() => parsePurgeBody({ olderThan: 'a week' }, now))).toEqual(['olderThan']);
    expect(issuesOf(() => parsePurgeBody({ olderThan: ['7d'] }, now))).toEqual(['olderThan']);
    expect(issuesOf(() => parsePurgeBody({ olderThan: 1e300 }, now))).toEqual(['olderThan']);
  });

  it('refuses dates outside the years 0001–9999, given or computed, naming the field', () => {
    const now = new Date('2026-06-10T00:00:00Z');
    // A million days back is before the year 1: a Date, but no store's.
    expect(issuesOf(() => parsePurgeBody({ olderThan: '1000000d' }, now))).toEqual(['olderThan']);
    expect(issuesOf(() => parsePurgeBody({ olderThan: 1e15 }, now))).toEqual(['olderThan']);
    for (const finishedBefore of ['0000-01-01', '+010000-01-01T00:00:00Z'])
      expect(
        issuesOf(() => parsePurgeBody({ finishedBefore }, now)),
        finishedBefore,
      ).toEqual(['finishedBefore']);
    // The year 1 itself is still a date.
    expect(parsePurgeBody({ finishedBefore: '0001-01-01' }, now).finishedBefore).toEqual(
      new Date('0001-01-01T00:00:00Z'),
    );
    expect(
      issuesOf(() =>
        parseListJobsQuery(
          new URLSearchParams('createdAfter=0000-12-31&createdBefore=%2B010000-01-01T00:00:00Z'),
        ),
      ),
    ).toEqual(['createdAfter', 'createdBefore']);
    expect(issuesOf(() => parseJobFilterBody({ createdBefore: '0000-01-01T00:00Z' }))).toEqual([
      'createdBefore',
    ]);
  });
});

describe('instants', () => {
  it('reads ISO 8601 dates and date-times, an offset-less time as UTC', () => {
    expect(parseInstant('2026-01-31')).toEqual(new Date('2026-01-31T00:00:00Z'));
    expect(parseInstant('2026-01-31T12:00')).toEqual(new Date('2026-01-31T12:00:00Z'));
    expect(parseInstant('2026-01-31T12:00:00.5+01:00')).toEqual(
      new Date('2026-01-31T11:00:00.500Z'),
    );
  });

  it('refuses what names no real calendar moment instead of rolling it over', () => {
    for (const text of [
      '2026-02-30',
      '2025-02-29',
      '2026-13-01',
      '2026-00-10',
      '2026-01-31T24:00',
      'yesterday',
    ])
      expect(parseInstant(text), text).toBeUndefined();
    expect(parseInstant('2024-02-29')).toEqual(new Date('2024-02-29T00:00:00Z'));
  });

  it('a list filter with an impossible date is a 400-style error naming the field', () => {
    expect(() => parseListJobsQuery(new URLSearchParams('createdAfter=2026-02-30'))).toThrow(
      expect.objectContaining({
        code: 'INVALID_INPUT',
        issues: [expect.objectContaining({ path: 'createdAfter' })],
      }),
    );
  });
});
