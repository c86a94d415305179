/**
 * The transport's recommended packs: a fan-out's tasks share messages of up to 64 — claimed ranges
 * of task rows by default, queue messages with `claimTaskRows: false` — a small stage's tasks still
 * reach every worker, every task keeps its own row and result, and `packTasks: 1` (on the
 * transport or the Switchyard) sends one message per task.
 */
import {
  createSwitchyard,
  defineJob,
  defineTask,
  silentLogger,
  stage,
  ValidationError,
} from '@switchyard/core';
import { decodeEnvelope, type Transport } from '@switchyard/core/driver';
import { afterEach, describe, expect, it } from 'vitest';
import { postgresStore, postgresTransport } from '../src/index.js';
import { engines } from './helpers.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const square = defineTask({ name: 'square', handler: (input: { i: number }) => input.i ** 2 });
const job = defineJob({
  name: 'wide-then-narrow',
  stages: [
    stage({
      name: 'wide',
      task: square,
      fanOut: () => Array.from({ length: 2000 }, (_, i) => ({ i })),
    }),
    stage({
      name: 'narrow',
      task: square,
      fanOut: () => Array.from({ length: 10 }, (_, i) => ({ i })),
    }),
  ],
});

/** The transport, with the tasks of each task message it sends and delivers recorded per stage. */
function recording(inner: Transport) {
  const messagesByStage: number[][] = [[], []];
  const deliveredByStage: number[][] = [[], []];
  const wrapped: Transport = Object.create(inner) as Transport;
  wrapped.receive = async (queue, options) => {
    const got = await inner.receive(queue, options);
    if (queue === 'task')
      for (const m of got) {
        const e = decodeEnvelope(m.body);
        if (e.kind === 'tasks') deliveredByStage[e.stage]!.push(e.tasks.length);
        else if (e.kind === 'task') deliveredByStage[e.stage]!.push(1);
      }
    return got;
  };
  wrapped.send = async (queue, messages, options) => {
    if (queue === 'task')
      for (const m of messages) {
        const e = decodeEnvelope(m.body);
        if (e.kind === 'tasks') messagesByStage[e.stage]!.push(e.tasks.length);
        else if (e.kind === 'task') messagesByStage[e.stage]!.push(1);
      }
    return inner.send(queue, messages, options);
  };
  return { transport: wrapped, messagesByStage, deliveredByStage };
}

describe('postgresTransport packTasks', () => {
  it('recommends 64 tasks per message by default, and takes 1 to 1000', () => {
    const connectionString = 'postgres://nobody@127.0.0.1:1/none';
    expect(postgresTransport({ connectionString }).limits.packTasks).toBe(64);
    expect(postgresTransport({ connectionString, packTasks: 1 }).limits.packTasks).toBe(1);
    for (const packTasks of [0, 1.5, 1001]) {
      const attempt = () => postgresTransport({ connectionString, packTasks });
      expect(attempt).toThrow(ValidationError);
      expect(attempt).toThrow(/packTasks must be an integer from 1 to 1000/);
    }
    // The reported limits' own override wins, and is checked under its own name.
    expect(
      postgresTransport({ connectionString, packTasks: 8, limits: { packTasks: 2 } }).limits
        .packTasks,
    ).toBe(2);
    expect(() => postgresTransport({ connectionString, limits: { packTasks: 0 } })).toThrow(
      /limits\.packTasks must be an integer/,
    );
  });
});

for (const engine of await engines()) {
  describe(`the default Postgres configuration packs (${engine.name})`, () => {
    async function run(options: {
      transportPackTasks?: number;
      batchingPackTasks?: number;
      claimTaskRows?: boolean;
    }) {
      const schema = engine.schema();
      const store = postgresStore({ ...engine.connection(), schema });
      const { transport, messagesByStage, deliveredByStage } = recording(
        postgresTransport({
          ...engine.connection(),
          schema,
          pollIntervalMs: 50,
          claimTaskRows: options.claimTaskRows ?? false,
          ...(options.transportPackTasks === undefined
            ? {}
            : { packTasks: options.transportPackTasks }),
        }),
      );
      const yard = createSwitchyard({
        jobs: [job],
        store,
        transports: [transport],
        logger: silentLogger,
        reconcile: { intervalMs: 0 },
        ...(options.batchingPackTasks === undefined
          ? {}
          : { batching: { packTasks: options.batchingPackTasks } }),
      });
      const controller = new AbortController();
      closers.push(async () => {
        controller.abort();
        await working;
        await yard.close();
      });
      await store.init();
      const working = yard.work({ concurrency: 256, signal: controller.signal, waitMs: 100 });
      const { jobId } = await yard.submit('wide-then-narrow', undefined);
      const view = await yard.waitFor(jobId, {
        signal: AbortSignal.timeout(60_000),
        pollIntervalMs: 50,
      });
      const results: number[] = [];
      for await (const r of yard.results(jobId, 'wide')) results.push(Number(r.result));
      return { view, messagesByStage, deliveredByStage, results };
    }

    /** The job succeeded, each task ran once and its result is the stage's. */
    function expectEveryTaskOnce(view: Awaited<ReturnType<typeof run>>['view'], results: number[]) {
      expect(view.status).toBe('succeeded');
      expect(view.stages.map((s) => [s.succeeded, s.failed])).toEqual([
        [2000, 0],
        [10, 0],
      ]);
      expect(results.sort((a, b) => a - b)).toEqual(
        Array.from({ length: 2000 }, (_, i) => i ** 2).sort((a, b) => a - b),
      );
    }

    it("claims the task rows in place: no task message, a big stage's tasks in ranges of up to 64, a small stage's one by one; every task runs once", async () => {
      const { view, messagesByStage, deliveredByStage, results } = await run({
        claimTaskRows: true,
      });
      expectEveryTaskOnce(view, results);
      expect(messagesByStage).toEqual([[], []]);
      const [wide, narrow] = deliveredByStage;
      expect(wide!.reduce((a, b) => a + b, 0)).toBe(2000);
      expect(Math.max(...wide!)).toBe(64);
      // A range holds at most a sixteenth of what is left: the tail spreads over the workers.
      expect(wide!.filter((n) => n === 64).length).toBeGreaterThan(10);
      expect(narrow).toEqual(Array(10).fill(1));
    });

    it("with claimTaskRows: false, sends a big stage's tasks 64 per message and a small stage's one per message; every task runs once", async () => {
      const { view, messagesByStage, results } = await run({});
      expectEveryTaskOnce(view, results);
      expect(messagesByStage[0]!.sort((a, b) => b - a)).toEqual([...Array(31).fill(64), 16]);
      expect(messagesByStage[1]).toEqual(Array(10).fill(1));
    });

    it('with claimTaskRows: false, sends one message per task with packTasks: 1 on the transport or on the Switchyard', async () => {
      for (const options of [{ transportPackTasks: 1 }, { batchingPackTasks: 1 }]) {
        const { view, messagesByStage } = await run(options);
        expect(view.status).toBe('succeeded');
        expect(messagesByStage.map((sizes) => sizes.length)).toEqual([2000, 10]);
        expect(messagesByStage.flat().every((size) => size === 1)).toBe(true);
      }
    });
  });
}
