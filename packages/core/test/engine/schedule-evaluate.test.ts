import { describe, expect, it } from 'vitest';
import { type CatchUp, compileSchedule, dueFires } from '../../src/engine/schedules/evaluate.js';

const at = (iso: string) => new Date(iso);
const compile = (cron: string, timezone?: string, catchUp: CatchUp = 'all') =>
  compileSchedule({ name: 's', cron, catchUp, ...(timezone ? { timezone } : {}) }, 'schedules[0]');
/** Every fire in (from, to], as ISO strings. */
const fires = (cron: string, from: string, to: string, timezone?: string) =>
  dueFires({
    schedule: compile(cron, timezone),
    cursor: at(from),
    now: at(to),
    graceMs: Number.POSITIVE_INFINITY,
    limit: 10_000,
  }).fires.map((d) => d.toISOString());

describe('schedule evaluator: cron fields', () => {
  it('minute field: a list, a range and a step', () => {
    expect(fires('5 * * * *', '2026-01-01T00:00:00Z', '2026-01-01T02:00:00Z')).toEqual([
      '2026-01-01T00:05:00.000Z',
      '2026-01-01T01:05:00.000Z',
    ]);
    expect(fires('0,30 * * * *', '2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z')).toEqual([
      '2026-01-01T00:30:00.000Z',
      '2026-01-01T01:00:00.000Z',
    ]);
    expect(fires('10-12 0 * * *', '2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z')).toHaveLength(3);
    expect(fires('*/15 * * * *', '2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z')).toHaveLength(4);
  });

  it('seconds field (6 fields)', () => {
    expect(fires('*/20 * * * * *', '2026-01-01T00:00:00Z', '2026-01-01T00:01:00Z')).toEqual([
      '2026-01-01T00:00:20.000Z',
      '2026-01-01T00:00:40.000Z',
      '2026-01-01T00:01:00.000Z',
    ]);
  });

  it('hour, day-of-month, month and day-of-week fields', () => {
    expect(fires('0 9 * * *', '2026-01-01T00:00:00Z', '2026-01-03T00:00:00Z')).toEqual([
      '2026-01-01T09:00:00.000Z',
      '2026-01-02T09:00:00.000Z',
    ]);
    expect(fires('0 0 15 * *', '2026-01-01T00:00:00Z', '2026-03-31T00:00:00Z')).toEqual([
      '2026-01-15T00:00:00.000Z',
      '2026-02-15T00:00:00.000Z',
      '2026-03-15T00:00:00.000Z',
    ]);
    expect(fires('0 0 1 6 *', '2026-01-01T00:00:00Z', '2027-12-31T00:00:00Z')).toEqual([
      '2026-06-01T00:00:00.000Z',
      '2027-06-01T00:00:00.000Z',
    ]);
    // 2026-01-05 is a Monday.
    expect(fires('0 0 * * 1', '2026-01-01T00:00:00Z', '2026-01-20T00:00:00Z')).toEqual([
      '2026-01-05T00:00:00.000Z',
      '2026-01-12T00:00:00.000Z',
      '2026-01-19T00:00:00.000Z',
    ]);
    // Day of month and day of week together: either matches (classic cron).
    expect(fires('0 0 13 * 5', '2026-02-01T00:00:00Z', '2026-02-28T00:00:00Z')).toEqual([
      '2026-02-06T00:00:00.000Z',
      '2026-02-13T00:00:00.000Z',
      '2026-02-20T00:00:00.000Z',
      '2026-02-27T00:00:00.000Z',
    ]);
  });

  it('refuses a bad expression or time zone, naming the field', () => {
    expect(() => compile('61 * * * *')).toThrow(/schedules\[0\]\.cron/);
    expect(() => compile('not cron')).toThrow(/schedules\[0\]\.cron/);
    expect(() => compile('* * * * *', 'Mars/Olympus')).toThrow(/schedules\[0\]\.timezone/);
  });
});

describe('schedule evaluator: time zones and daylight saving', () => {
  it('reads the fields in the schedule time zone', () => {
    // 09:00 in Paris is 08:00 UTC in winter, 07:00 UTC in summer.
    expect(
      fires('0 9 * * *', '2026-01-10T00:00:00Z', '2026-01-11T00:00:00Z', 'Europe/Paris'),
    ).toEqual(['2026-01-10T08:00:00.000Z']);
    expect(
      fires('0 9 * * *', '2026-07-10T00:00:00Z', '2026-07-11T00:00:00Z', 'Europe/Paris'),
    ).toEqual(['2026-07-10T07:00:00.000Z']);
  });

  it('spring forward: a time in the skipped hour fires an hour later, once', () => {
    // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist that day.
    expect(
      fires('30 2 * * *', '2026-03-07T00:00:00Z', '2026-03-10T00:00:00Z', 'America/New_York'),
    ).toEqual([
      '2026-03-07T07:30:00.000Z', // 02:30 EST
      '2026-03-08T07:30:00.000Z', // 03:30 EDT
      '2026-03-09T06:30:00.000Z', // 02:30 EDT
    ]);
  });

  it('fall back: a time in the repeated hour fires once, at its first occurrence', () => {
    // New York, 2026-11-01: 02:00 EDT goes back to 01:00 EST; 01:30 happens twice.
    expect(
      fires('30 1 * * *', '2026-10-31T00:00:00Z', '2026-11-03T00:00:00Z', 'America/New_York'),
    ).toEqual([
      '2026-10-31T05:30:00.000Z', // 01:30 EDT
      '2026-11-01T05:30:00.000Z', // 01:30 EDT, the first of the two
      '2026-11-02T06:30:00.000Z', // 01:30 EST
    ]);
    // A time outside the repeated hour is unaffected: 03:00 local, every day.
    expect(
      fires('0 3 * * *', '2026-10-31T00:00:00Z', '2026-11-02T00:00:00Z', 'America/New_York'),
    ).toEqual(['2026-10-31T07:00:00.000Z', '2026-11-01T08:00:00.000Z']);
    // Every 30 minutes: the repeated hour's wall times have passed already, so nothing fires
    // between 01:30 EDT and 02:00 EST (90 minutes).
    expect(
      fires('*/30 * * * *', '2026-11-01T05:00:00Z', '2026-11-01T07:30:00Z', 'America/New_York'),
    ).toEqual([
      '2026-11-01T05:30:00.000Z', // 01:30 EDT
      '2026-11-01T07:00:00.000Z', // 02:00 EST
      '2026-11-01T07:30:00.000Z', // 02:30 EST
    ]);
  });
});

describe('schedule evaluator: catch-up', () => {
  const hourly = (catchUp: CatchUp) => compile('0 * * * *', undefined, catchUp);
  // Down from 00:30 to 05:30: the 01:00 … 05:00 fires were missed; grace 15 min.
  const evaluate = (catchUp: CatchUp, limit = 100) =>
    dueFires({
      schedule: hourly(catchUp),
      cursor: at('2026-01-01T00:30:00Z'),
      now: at('2026-01-01T05:30:00Z'),
      graceMs: 15 * 60_000,
      limit,
    });

  it('fires on-time fires whatever the policy', () => {
    for (const policy of ['none', 'latest', 'all'] as const) {
      const due = dueFires({
        schedule: hourly(policy),
        cursor: at('2026-01-01T04:59:00Z'),
        now: at('2026-01-01T05:00:02Z'),
        graceMs: 15 * 60_000,
        limit: 100,
      });
      expect(due.fires.map((d) => d.toISOString())).toEqual(['2026-01-01T05:00:00.000Z']);
      expect(due.cursor.toISOString()).toBe('2026-01-01T05:00:02.000Z');
    }
  });

  it('none: skips every missed fire', () => {
    const due = evaluate('none');
    expect(due.fires).toEqual([]);
    expect(due.skipped).toBe(5);
    expect(due.cursor.toISOString()).toBe('2026-01-01T05:30:00.000Z');
  });

  it('latest: fires the most recent missed fire once', () => {
    const due = evaluate('latest');
    expect(due.fires.map((d) => d.toISOString())).toEqual(['2026-01-01T05:00:00.000Z']);
    expect(due.skipped).toBe(4);
    // An on-time fire supersedes the missed ones.
    const onTime = dueFires({
      schedule: hourly('latest'),
      cursor: at('2026-01-01T00:30:00Z'),
      now: at('2026-01-01T05:10:00Z'),
      graceMs: 15 * 60_000,
      limit: 100,
    });
    expect(onTime.fires.map((d) => d.toISOString())).toEqual(['2026-01-01T05:00:00.000Z']);
    expect(onTime.skipped).toBe(4);
  });

  it('all: fires every missed fire, at most limit per call, resuming after the last', () => {
    expect(evaluate('all').fires).toHaveLength(5);
    const first = evaluate('all', 2);
    expect(first.fires.map((d) => d.toISOString())).toEqual([
      '2026-01-01T01:00:00.000Z',
      '2026-01-01T02:00:00.000Z',
    ]);
    expect(first.cursor.toISOString()).toBe('2026-01-01T02:00:00.000Z');
    const rest = dueFires({
      schedule: hourly('all'),
      cursor: first.cursor,
      now: at('2026-01-01T05:30:00Z'),
      graceMs: 15 * 60_000,
      limit: 100,
    });
    expect(rest.fires).toHaveLength(3);
  });

  it('a cursor at now returns nothing: each fire is returned once', () => {
    const due = dueFires({
      schedule: hourly('all'),
      cursor: at('2026-01-01T05:00:00Z'),
      now: at('2026-01-01T05:00:00Z'),
      graceMs: 0,
      limit: 100,
    });
    expect(due.fires).toEqual([]);
  });
});
