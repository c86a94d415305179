/**
 * The transport's recommended prefetch: by default a worker on this path asks for, beyond its
 * slots, the short tasks its slots finish in one receive round trip — never running more handlers
 * than its slots — and with `prefetchPerSlot: 0` (or `work({ prefetch: 0 })`) for none.
 */
import {
  createSwitchyard,
  defineJob,
  defineTask,
  silentLogger,
  stage,
  ValidationError,
  type WorkOptions,
} from '@switchyard/core';
import type { Transport } from '@switchyard/core/driver';
import { afterEach, describe, expect, it } from 'vitest';
import { postgresStore, postgresTransport } from '../src/index.js';
import { engines } from './helpers.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

describe('postgresTransport prefetchPerSlot', () => {
  it('recommends 8 tasks per slot by default, and takes 0 to 1000', () => {
    const connectionString = 'postgres://nobody@127.0.0.1:1/none';
    expect(postgresTransport({ connectionString }).limits.prefetchPerSlot).toBe(32);
    expect(postgresTransport({ connectionString, prefetchPerSlot: 0 }).limits.prefetchPerSlot).toBe(
      0,
    );
    for (const prefetchPerSlot of [-1, 2.5, 1001, Number.NaN]) {
      const attempt = () => postgresTransport({ connectionString, prefetchPerSlot });
      expect(attempt).toThrow(ValidationError);
      expect(attempt).toThrow(/prefetchPerSlot must be an integer from 0 to 1000/);
    }
    expect(
      postgresTransport({ connectionString, prefetchPerSlot: 4, limits: { prefetchPerSlot: 2 } })
        .limits.prefetchPerSlot,
    ).toBe(2);
    expect(() => postgresTransport({ connectionString, limits: { prefetchPerSlot: -1 } })).toThrow(
      /limits\.prefetchPerSlot must be an integer/,
    );
  });
});

let running = 0;
let mostRunning = 0;
const tick = defineTask({
  name: 'tick',
  handler: async (input: { i: number }) => {
    mostRunning = Math.max(mostRunning, ++running);
    await Promise.resolve();
    running--;
    return input.i;
  },
});
const job = defineJob({
  name: 'many-short',
  stages: [
    stage({
      name: 'ticks',
      task: tick,
      fanOut: () => Array.from({ length: 1200 }, (_, i) => ({ i })),
    }),
  ],
});

/**
 * The transport, with the most task messages one receive asked for: a worker asks for what its
 * free slots and its prefetch can hold, split between its two receives in flight.
 */
function asking(inner: Transport) {
  const seen = { most: 0 };
  const wrapped: Transport = Object.create(inner) as Transport;
  wrapped.receive = (queue, options) => {
    if (queue === 'task') seen.most = Math.max(seen.most, options.maxMessages);
    return inner.receive(queue, options);
  };
  return { transport: wrapped, seen };
}

for (const engine of await engines()) {
  describe(`the default Postgres configuration prefetches short tasks (${engine.name})`, () => {
    async function run(options: { prefetchPerSlot?: number; work?: WorkOptions }) {
      running = 0;
      mostRunning = 0;
      const schema = engine.schema();
      const store = postgresStore({ ...engine.connection(), schema });
      const { transport, seen } = asking(
        postgresTransport({
          ...engine.connection(),
          schema,
          pollIntervalMs: 50,
          // One task per message, so that messages held count tasks held.
          packTasks: 1,
          ...(options.prefetchPerSlot === undefined
            ? {}
            : { prefetchPerSlot: options.prefetchPerSlot }),
        }),
      );
      const yard = createSwitchyard({
        jobs: [job],
        store,
        transports: [transport],
        logger: silentLogger,
        reconcile: { intervalMs: 0 },
      });
      const controller = new AbortController();
      closers.push(async () => {
        controller.abort();
        await working;
        await yard.close();
      });
      await store.init();
      const slots = 4;
      const working = yard.work({
        concurrency: slots,
        ...options.work,
        signal: controller.signal,
        waitMs: 100,
      });
      const { jobId } = await yard.submit('many-short', undefined);
      const view = await yard.waitFor(jobId, {
        signal: AbortSignal.timeout(90_000),
        pollIntervalMs: 50,
      });
      return { view, slots, mostAsked: seen.most };
    }

    it('asks for more tasks than its slots and never runs more handlers than them', async () => {
      const { view, slots, mostAsked } = await run({});
      expect(view.status).toBe('succeeded');
      expect(view.stages[0]!.succeeded).toBe(1200);
      expect(mostRunning).toBeLessThanOrEqual(slots);
      expect(mostAsked).toBeGreaterThan(slots);
      expect(mostAsked).toBeLessThanOrEqual(slots + 32 * slots);
    });

    it('asks for no more than its slots with prefetchPerSlot: 0, or with work({ prefetch: 0 })', async () => {
      for (const options of [{ prefetchPerSlot: 0 }, { work: { prefetch: 0 } }]) {
        const { view, slots, mostAsked } = await run(options);
        expect(view.status).toBe('succeeded');
        expect(mostRunning).toBeLessThanOrEqual(slots);
        expect(mostAsked).toBeLessThanOrEqual(slots);
      }
    });
  });
}
