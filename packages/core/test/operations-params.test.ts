import { isSwitchyardError } from '@switchyard/core';
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
      'status=failed,cancelled&name=etl&transport=postgres&created_after=2026-01-01T00:00:00Z&limit=20&cursor=abc',
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
  });

  it('names every bad query parameter', () => {
    expect(
      issuesOf(() =>
        parseListJobsQuery(new URLSearchParams('status=done&limit=501&created_before=yesterday')),
      ),
    ).toEqual(['created_before', 'limit', 'status']);
    expect(issuesOf(() => parseListJobsQuery(new URLSearchParams('limit=0')))).toEqual(['limit']);
  });

  it('parses retry and bulk filter bodies, refusing unknown fields', () => {
    expect(parseRetryBody({ stage: 'work', task_ids: ['j.0.1'] })).toEqual({
      stage: 'work',
      taskIds: ['j.0.1'],
    });
    expect(parseRetryBody(undefined)).toEqual({});
    expect(issuesOf(() => parseRetryBody({ stage: -1, task_ids: 'j.0.1', x: 1 }))).toEqual([
      'stage',
      'task_ids',
      'x',
    ]);
    expect(parseJobFilterBody({ status: 'failed', name: 'etl' })).toEqual({
      status: ['failed'],
      name: 'etl',
    });
    expect(issuesOf(() => parseJobFilterBody([]))).toEqual(['']);
  });

  it('parses a purge body from a retention-style age or a date', () => {
    const now = new Date('2026-06-10T00:00:00Z');
    expect(parsePurgeBody({ status: 'succeeded', older_than: '7d' }, now)).toEqual({
      status: ['succeeded'],
      finishedBefore: new Date('2026-06-03T00:00:00Z'),
    });
    expect(parsePurgeBody({ finished_before: '2026-01-01T00:00:00Z', limit: 10 }, now)).toEqual({
      finishedBefore: new Date('2026-01-01T00:00:00Z'),
      limit: 10,
    });
    expect(issuesOf(() => parsePurgeBody({ status: 'running' }, now))).toEqual([
      'older_than',
      'status',
    ]);
    expect(issuesOf(() => parsePurgeBody({ older_than: 'a week' }, now))).toEqual(['older_than']);
  });
});
