import { describe, expect, it } from 'vitest';
import { Batcher } from '../src/util/batcher.js';

/** A batcher that doubles numbers and records the batches it ran. */
function doubling(maxSize: number, maxInFlight = 1, fail?: (items: number[]) => boolean) {
  const batches: number[][] = [];
  let running = 0;
  let maxRunning = 0;
  const batcher = new Batcher<number, number>(
    async (items) => {
      batches.push(items);
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      if (fail?.(items)) throw new Error('batch failed');
      return items.map((i) => i * 2);
    },
    maxSize,
    maxInFlight,
  );
  return { batcher, batches, maxRunning: () => maxRunning };
}

describe('Batcher', () => {
  it('sends what is added in one tick as one batch, and each caller gets its own result', async () => {
    const { batcher, batches } = doubling(100);
    const results = await Promise.all([1, 2, 3].map((i) => batcher.add(i)));
    expect(results).toEqual([2, 4, 6]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('resolves addMany with its results in order, across batches when it is larger than one', async () => {
    const { batcher, batches } = doubling(4);
    const [single, many] = await Promise.all([
      batcher.add(100),
      batcher.addMany([1, 2, 3, 4, 5, 6, 7]),
    ]);
    expect(single).toBe(200);
    expect(many).toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(batches).toEqual([
      [100, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
    expect(await batcher.addMany([])).toEqual([]);
  });

  it('rejects an addMany once when any of its batches fails, and only the callers in that batch', async () => {
    const { batcher } = doubling(2, 1, (items) => items.includes(3));
    const many = batcher.addMany([1, 2, 3, 4]);
    const later = batcher.add(9);
    await expect(many).rejects.toThrow('batch failed');
    expect(await later).toBe(18);
  });

  it('keeps at most maxInFlight batches running', async () => {
    const { batcher, maxRunning } = doubling(1, 2);
    await Promise.all(Array.from({ length: 8 }, (_, i) => batcher.add(i)));
    expect(maxRunning()).toBe(2);
  });
});
