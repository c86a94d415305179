import { describe, expect, it } from 'vitest';
import { sendStageMessage, taskMessage, taskMessages } from '../../src/engine/outbox.js';
import {
  decodeEnvelope,
  packHead,
  type TaskEnvelope,
  type TasksEnvelope,
} from '../../src/envelope.js';
import { taskId } from '../../src/ids.js';
import { fakeEngine } from './fake-context.js';

const jobId = 'job-1';
const tasksOf = (n: number, input: (i: number) => unknown = (i) => ({ n: i })) =>
  Array.from({ length: n }, (_, index) => ({ index, input: input(index) }));
const packs = (bodies: { body: string }[]) =>
  bodies.map((m) => decodeEnvelope(m.body) as TasksEnvelope);

describe('taskMessages', () => {
  it('sends one message per task, its id the task id, when packTasks is 1', () => {
    const { target } = fakeEngine();
    const messages = taskMessages({ target, jobId, stage: 2, resumed: false }, tasksOf(3));
    expect(messages.map((m) => m.messageId)).toEqual([0, 1, 2].map((i) => taskId(jobId, 2, i)));
    const first = decodeEnvelope(messages[0]!.body) as TaskEnvelope;
    expect(first).toEqual({
      v: 1,
      kind: 'task',
      jobId,
      stage: 2,
      taskId: `${jobId}.2.0`,
      input: { n: 0 },
    });
  });

  it('names the job as every message’s fairness key, packed or not, in its priority lane', () => {
    for (const packTasks of [1, 4]) {
      const { target } = fakeEngine({ batching: { packTasks } });
      const normal = taskMessages({ target, jobId, stage: 0, resumed: false }, tasksOf(8));
      expect(normal.map((m) => [m.fairnessKey, m.priority])).toEqual(
        normal.map(() => [jobId, undefined]),
      );
      const low = taskMessages(
        { target, jobId, stage: 0, resumed: false, priority: 'low' },
        tasksOf(8),
      );
      expect(low.map((m) => [m.fairnessKey, m.priority])).toEqual(low.map(() => [jobId, 'low']));
    }
  });

  it('packs at most packTasks tasks per message, every task once and in order', () => {
    const { target } = fakeEngine({ batching: { packTasks: 3 } });
    const messages = taskMessages({ target, jobId, stage: 0, resumed: false }, tasksOf(10));
    const decoded = packs(messages);
    expect(decoded.map((p) => p.tasks.length)).toEqual([3, 3, 3, 1]);
    expect(decoded.flatMap((p) => p.tasks)).toEqual(tasksOf(10));
    expect(decoded.every((p) => p.resumed === undefined)).toBe(true);
  });

  it("spreads a fan-out chunk packed by the transport's recommendation: at most ⌈n / 16⌉ per message", () => {
    const { target } = fakeEngine({ limits: { packTasks: 64 } });
    const sizes = (n: number, spread: boolean) =>
      taskMessages({ target, jobId, stage: 0, resumed: false, spread }, tasksOf(n)).map((m) => {
        const e = decodeEnvelope(m.body);
        return e.kind === 'tasks' ? e.tasks.length : 1;
      });
    // A small stage goes out as single messages, a larger one in about 16 packs.
    expect(sizes(12, true)).toEqual(Array(12).fill(1));
    expect(sizes(40, true)).toEqual([...Array(13).fill(3), 1]);
    // A whole chunk packs the recommendation.
    expect(sizes(2000, true).slice(0, 31)).toEqual(Array(31).fill(64));
    // A window's release is not a fan-out chunk: packed whole.
    expect(sizes(40, false)).toEqual([40]);
  });

  it('applies a packTasks the user set as it is, even to a small fan-out chunk', () => {
    const { target } = fakeEngine({ limits: { packTasks: 64 }, batching: { packTasks: 8 } });
    const messages = taskMessages(
      { target, jobId, stage: 0, resumed: false, spread: true },
      tasksOf(12),
    );
    expect(packs(messages).map((p) => p.tasks.length)).toEqual([8, 4]);
  });

  it('keeps every pack within the transport message size', () => {
    const limit = 400;
    const { target } = fakeEngine({
      batching: { packTasks: 100 },
      limits: { maxMessageBytes: limit },
    });
    const messages = taskMessages(
      { target, jobId, stage: 0, resumed: false },
      tasksOf(50, (i) => `é-${'x'.repeat(i % 20)}`),
    );
    expect(messages.length).toBeGreaterThan(1);
    for (const m of messages) expect(Buffer.byteLength(m.body)).toBeLessThanOrEqual(limit);
    expect(packs(messages).flatMap((p) => p.tasks.map((t) => t.index))).toEqual(
      Array.from({ length: 50 }, (_, i) => i),
    );
  });

  it('sends an input too large to share a message by claim check (no input in the entry)', () => {
    const { target } = fakeEngine({
      batching: { packTasks: 10 },
      limits: { maxMessageBytes: 300 },
    });
    const tasks = [
      { index: 0, input: 'small' },
      { index: 1, input: 'x'.repeat(1000) },
      { index: 2, input: 'small too' },
    ];
    const entries = packs(taskMessages({ target, jobId, stage: 0, resumed: false }, tasks)).flatMap(
      (p) => p.tasks,
    );
    expect(entries).toEqual([
      { index: 0, input: 'small' },
      { index: 1 },
      { index: 2, input: 'small too' },
    ]);
  });

  it('names a pack by its exact set of tasks', () => {
    const { target } = fakeEngine({ batching: { packTasks: 3 } });
    const spec = { target, jobId, stage: 0, resumed: false };
    const a = taskMessages(spec, tasksOf(3));
    const again = taskMessages(spec, tasksOf(3));
    const fewer = taskMessages(spec, tasksOf(2));
    expect(a).toHaveLength(1);
    expect(again[0]!.messageId).toBe(a[0]!.messageId);
    expect(fewer[0]!.messageId).not.toBe(a[0]!.messageId);
    // Same first task and size, another set.
    const other = taskMessages(
      spec,
      [0, 1, 5].map((index) => ({ index, input: index })),
    );
    expect(other[0]!.messageId).not.toBe(a[0]!.messageId);
  });

  it('marks a resumed fan-out’s packs', () => {
    const { target } = fakeEngine({ batching: { packTasks: 3 } });
    const [pack] = packs(taskMessages({ target, jobId, stage: 0, resumed: true }, tasksOf(2)));
    expect(pack!.resumed).toBe(true);
  });
});

describe('packHead', () => {
  it('is a pack up to its list: entries and `]}` after it decode as the whole pack', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const head = packHead({ v: 1, kind: 'tasks', jobId: 'j', stage: 2, traceparent });
    const entries = [{ index: 4, input: { a: 1 } }, { index: 5 }];
    const body = `${head}${entries.map((e) => JSON.stringify(e)).join(',')}]}`;
    expect(decodeEnvelope(body)).toEqual({
      v: 1,
      kind: 'tasks',
      jobId: 'j',
      stage: 2,
      traceparent,
      tasks: entries,
    });
  });
});

describe('taskMessage', () => {
  it('carries the input inline when it fits, else leaves it in the task row', () => {
    const { target } = fakeEngine({ limits: { maxMessageBytes: 300 } });
    const small = decodeEnvelope(
      taskMessage(target, { jobId, stage: 0, index: 4, input: 'hi' }).body,
    );
    expect(small).toMatchObject({ kind: 'task', taskId: `${jobId}.0.4`, input: 'hi' });
    const big = taskMessage(target, { jobId, stage: 0, index: 5, input: 'x'.repeat(1000) });
    expect(Buffer.byteLength(big.body)).toBeLessThanOrEqual(300);
    expect('input' in decodeEnvelope(big.body)).toBe(false);
    expect(big.messageId).toBe(`${jobId}.0.5`);
  });

  it('marks a re-drive with the attempts so far, and a fan-out’s own message without', () => {
    const { target } = fakeEngine();
    const own = decodeEnvelope(taskMessage(target, { jobId, stage: 0, index: 0, input: 1 }).body);
    expect((own as TaskEnvelope).attempts).toBeUndefined();
    const redrive = decodeEnvelope(
      taskMessage(target, { jobId, stage: 0, index: 0, input: 1, attempts: 2 }).body,
    );
    expect((redrive as TaskEnvelope).attempts).toBe(2);
    const never = decodeEnvelope(
      taskMessage(target, { jobId, stage: 0, index: 0, input: 1, attempts: 0 }).body,
    );
    expect((never as TaskEnvelope).attempts).toBe(0);
  });
});

describe('sendStageMessage', () => {
  it('sends one stage message with an id naming the job and stage', async () => {
    const fake = fakeEngine();
    await sendStageMessage(fake.target, { jobId, stage: 3 });
    expect(fake.transport.sent.stage).toHaveLength(1);
    expect(fake.transport.sent.stage[0]!.messageId).toBe(`${jobId}.stage.3`);
    expect(fake.transport.envelopes('stage')).toEqual([{ v: 1, kind: 'stage', jobId, stage: 3 }]);
    expect(fake.transport.sent.task).toHaveLength(0);
  });
});
