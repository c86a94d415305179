import { describe, expect, it } from 'vitest';
import { JobDirectory } from '../../src/engine/job-directory.js';
import { ValidationError } from '../../src/errors.js';
import { memoryStore } from '../../src/memory/memory-store.js';
import type { Store } from '../../src/store.js';
import { testJob } from './fake-context.js';

const job = testJob({ name: 'dir', stages: [{ name: 'split' }, { name: 'merge' }] });

/** The memory store, counting its `getJob` reads. */
function countingStore(): { store: Store; reads: () => number } {
  const store = memoryStore();
  let reads = 0;
  const getJob = store.getJob.bind(store);
  store.getJob = (id) => {
    reads++;
    return getJob(id);
  };
  return { store, reads: () => reads };
}

async function create(store: Store, id: string) {
  await store.createJob({ id, name: 'dir', params: null, transport: 'memory', stageCount: 2 });
}

describe('JobDirectory', () => {
  it('reads a job’s facts once, concurrent misses sharing the read, then answers without a promise', async () => {
    const { store, reads } = countingStore();
    await create(store, 'j1');
    const directory = new JobDirectory({
      store,
      definitions: new Map([['dir', job]]),
      maxCached: 10,
    });
    const [a, b] = await Promise.all([directory.info('j1'), directory.info('j1')]);
    expect(a).toEqual({ id: 'j1', name: 'dir', transport: 'memory', stageCount: 2 });
    expect(b).toBe(a);
    expect(reads()).toBe(1);
    const cached = directory.info('j1');
    expect(cached).not.toBeInstanceOf(Promise);
    expect(cached).toEqual(a);
    expect(reads()).toBe(1);
  });

  it('does not remember a job that does not exist yet', async () => {
    const { store } = countingStore();
    const directory = new JobDirectory({ store, definitions: new Map(), maxCached: 10 });
    expect(await directory.info('later')).toBeUndefined();
    await create(store, 'later');
    expect(await directory.info('later')).toMatchObject({ id: 'later' });
  });

  it('keeps at most maxCached jobs, forgetting the oldest', async () => {
    const { store, reads } = countingStore();
    for (const id of ['a', 'b', 'c']) await create(store, id);
    const directory = new JobDirectory({ store, definitions: new Map(), maxCached: 2 });
    for (const id of ['a', 'b', 'c']) await directory.info(id);
    expect(reads()).toBe(3);
    await directory.info('c');
    await directory.info('b');
    expect(reads()).toBe(3);
    await directory.info('a');
    expect(reads()).toBe(4);
  });

  it('finishes a job in the store and forgets it', async () => {
    const { store, reads } = countingStore();
    await create(store, 'f');
    await store.startStage('f', 0, 'split');
    const directory = new JobDirectory({ store, definitions: new Map(), maxCached: 10 });
    await directory.info('f');
    await directory.finish('f', { status: 'succeeded', result: 7 });
    expect(await store.getJob('f')).toMatchObject({ status: 'succeeded', result: 7 });
    const before = reads();
    await directory.info('f');
    expect(reads()).toBe(before + 1);
  });

  it('finds a stage by name or index, and names the field when it is not one', () => {
    const directory = new JobDirectory({
      store: memoryStore(),
      definitions: new Map([['dir', job]]),
      maxCached: 10,
    });
    const record = { name: 'dir', stageCount: 2 };
    expect(directory.stageIndex(record, 'merge')).toBe(1);
    expect(directory.stageIndex(record, 0)).toBe(0);
    expect(directory.definition('dir')).toBe(job);
    expect(directory.definition('other')).toBeUndefined();
    for (const bad of ['nope', 2, -1, 0.5]) {
      let thrown: unknown;
      try {
        directory.stageIndex(record, bad);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ValidationError);
      expect((thrown as ValidationError).issues).toEqual([
        { path: 'stage', message: 'unknown stage' },
      ]);
    }
  });
});
