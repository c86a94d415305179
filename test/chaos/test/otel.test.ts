/**
 * The `--otel` span check on its own: what it accepts (a job's spans in its trace, or in a trace a
 * worker began after the context was lost) and what it reports (malformed spans, a span in another
 * job's trace or in a trace nobody began, a job with no task span in its trace).
 */
import { describe, expect, it } from 'vitest';
import { type SpanLine, TraceCheck } from '../src/otel.js';

const T = (n: number) => n.toString(16).padStart(32, 'a');
const S = (n: number) => n.toString(16).padStart(16, 'b');

let next = 1;
function task(job: string, trace: string, extra: Partial<SpanLine> = {}): SpanLine {
  return {
    ev: 'span',
    name: 'switchyard task',
    kind: 4,
    trace,
    span: S(next++),
    parent: S(999),
    startMs: 10,
    endMs: 12,
    job,
    stage: 0,
    index: 0,
    attempt: 1,
    outcome: 'succeeded',
    ...extra,
  };
}

function checkOf(lines: { ev: string }[]): string[] {
  const check = new TraceCheck();
  check.submitted('job-a', [T(1)]);
  check.submitted('job-b', [T(2)]);
  for (const line of lines) check.line(line);
  return check.report().violations;
}

describe('chaos --otel: the span check', () => {
  it('accepts spans in their job’s trace and in a trace a worker began', () => {
    const check = new TraceCheck();
    check.submitted('job-a', [T(1)]);
    check.submitted('job-b', [T(2)]);
    check.line({ ev: 'root', trace: T(3) });
    for (const line of [
      task('job-a', T(1)),
      task('job-b', T(2)),
      task('job-b', T(3)),
      task('job-b', T(4), { parent: undefined }),
      {
        ev: 'span',
        name: 'switchyard barrier',
        kind: 0,
        trace: T(1),
        span: S(7),
        startMs: 1,
        endMs: 1,
      },
    ])
      check.line(line);
    expect(check.report()).toEqual({
      spans: 5,
      taskSpans: 4,
      inJobTrace: 2,
      inWorkerTrace: 1,
      withoutParent: 1,
      violations: [],
    });
  });

  it('reports malformed spans, crossed or unexplained traces, and a job never traced', () => {
    const base = [task('job-a', T(1)), task('job-b', T(2))];
    const only = (line: SpanLine) => checkOf([...base, line]);
    expect(only(task('job-a', '0'.repeat(32)))).toEqual([
      expect.stringContaining('invalid trace or span id'),
      expect.stringContaining('in a trace neither its submit nor any worker began'),
    ]);
    expect(only(task('job-a', T(1), { kind: 0 }))).toEqual([
      expect.stringContaining('unknown name or wrong kind'),
    ]);
    expect(only(task('job-a', T(1), { endMs: 5 }))).toEqual([
      expect.stringContaining('ends before it starts'),
    ]);
    expect(only(task('job-a', T(1), { attempt: 0 }))).toEqual([
      expect.stringContaining('without its job, stage, index, attempt or outcome'),
    ]);
    expect(only(task('job-a', T(2)))).toEqual([
      expect.stringContaining('in the trace of job job-b'),
    ]);
    expect(only(task('job-a', T(5)))).toEqual([
      expect.stringContaining('in a trace neither its submit nor any worker began'),
    ]);
    expect(checkOf([task('job-a', T(1))])).toEqual([
      'otel: job job-b has no task span in its trace',
    ]);
  });
});
