import { parseTaskId, taskId } from '@switchyard/core/driver';
import { describe, expect, it } from 'vitest';

describe('task ids', () => {
  it('parses what taskId builds, job ids with dots included', () => {
    expect(parseTaskId(taskId('hello_world-abc', 1, 42))).toEqual({
      jobId: 'hello_world-abc',
      stage: 1,
      index: 42,
    });
    expect(parseTaskId(taskId('a.b.c', 0, 999_999_999))).toEqual({
      jobId: 'a.b.c',
      stage: 0,
      index: 999_999_999,
    });
  });

  it('rejects ids that taskId cannot build', () => {
    for (const id of [
      '',
      'job',
      'job.1',
      '.1.2',
      'job.x.2',
      'job.1.',
      'job.1.-2',
      'job.1.1234567890',
    ])
      expect(parseTaskId(id), id).toBeUndefined();
  });
});
