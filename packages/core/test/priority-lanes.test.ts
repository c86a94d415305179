import { byPriority, LaneSchedule, type Priority, priorityIssue } from '@switchyard/core/driver';
import { describe, expect, it } from 'vitest';

describe('LaneSchedule', () => {
  it('starts six receives in ten with high, three with normal, one with low, spread out', () => {
    const lanes = new LaneSchedule();
    const firsts = Array.from({ length: 10 }, () => lanes.next()[0]);
    expect(firsts).toEqual([
      'high',
      'normal',
      'high',
      'high',
      'normal',
      'high',
      'low',
      'high',
      'normal',
      'high',
    ]);
    // The next ten repeat the cycle exactly.
    expect(Array.from({ length: 10 }, () => lanes.next()[0])).toEqual(firsts);
  });

  it('reads the other lanes highest first after the picked one', () => {
    const lanes = new LaneSchedule({ high: 0, normal: 0, low: 1 });
    expect(lanes.next()).toEqual(['low', 'high', 'normal']);
    expect(() => new LaneSchedule({ high: 0, normal: 0, low: 0 })).toThrow(RangeError);
  });
});

describe('byPriority', () => {
  const m = (body: string, priority?: Priority) => ({ body, ...(priority ? { priority } : {}) });

  it('keeps a batch of one lane as it is', () => {
    const batch = [m('a', 'low'), m('b', 'low')];
    const groups = byPriority(batch);
    expect([...groups.keys()]).toEqual(['low']);
    expect(groups.get('low')).toBe(batch);
    expect([...byPriority([m('c'), m('d', 'normal')]).keys()]).toEqual(['normal']);
  });

  it('groups a mixed batch by lane, each group in the order sent', () => {
    const groups = byPriority([m('a', 'high'), m('b'), m('c', 'high'), m('d', 'low')]);
    expect(Object.fromEntries([...groups].map(([p, g]) => [p, g.map((x) => x.body)]))).toEqual({
      high: ['a', 'c'],
      normal: ['b'],
      low: ['d'],
    });
  });
});

describe('priorityIssue', () => {
  it('names the message whose priority is no lane, and passes the rest', () => {
    expect(priorityIssue({}, 0)).toBeUndefined();
    expect(priorityIssue({ priority: 'low' }, 1)).toBeUndefined();
    expect(priorityIssue({ priority: 'urgent' }, 2)).toEqual({
      path: 'messages[2].priority',
      message: "must be 'high', 'normal' or 'low'",
    });
  });
});
