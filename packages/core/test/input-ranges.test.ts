/**
 * Values a store cannot hold are refused where they come in, naming their field: instants outside
 * the years 0001–9999, a stage index past the job's stages, an idempotency key with a lone
 * surrogate. PostgreSQL would refuse the first two (and a host would report "backend
 * unavailable"); the last would name the same job as a different key.
 */
import {
  createSwitchyard,
  defineJob,
  defineTask,
  INSTANT_RANGE,
  isStorableInstant,
  memoryStore,
  memoryTransport,
  parseInstant,
  silentLogger,
  stage,
} from '@switchyard/core';
import { describe, expect, it } from 'vitest';

const job = defineJob({
  name: 'ranges',
  stages: [
    stage({
      name: 'only',
      task: defineTask({ name: 'ranges-task', handler: () => 'ok' }),
      fanOut: () => [1],
    }),
  ],
});

function yard() {
  return createSwitchyard({
    jobs: [job],
    store: memoryStore(),
    transports: [memoryTransport()],
    logger: silentLogger,
  });
}

/** A rejection as a caller sees it: its code and the fields it names. */
async function refusal(promise: Promise<unknown>) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e as { code?: string; issues?: { path: string }[] },
  );
  return { code: err?.code, fields: err?.issues?.map((i) => i.path) };
}

const BEFORE_YEAR_1 = new Date(INSTANT_RANGE.firstMs - 1);
const YEAR_2099 = new Date('2099-01-01T00:00:00Z');

describe('instants outside the years 0001-9999', () => {
  it('parseInstant and isStorableInstant draw the line at the range', () => {
    expect(parseInstant('0000-01-01')).toBeUndefined();
    expect(parseInstant('0001-01-01')).toEqual(new Date(INSTANT_RANGE.firstMs));
    expect(parseInstant('9999-12-31T23:59:59.999Z')).toEqual(new Date(INSTANT_RANGE.lastMs));
    expect(isStorableInstant(INSTANT_RANGE.lastMs + 1)).toBe(false);
    expect(isStorableInstant(Number.NaN)).toBe(false);
  });

  it('submit refuses a delay, a run time or a deadline that ends outside it, naming the field', async () => {
    const y = yard();
    expect(await refusal(y.submit('ranges', undefined, { delayMs: 1e300 }))).toEqual({
      code: 'INVALID_INPUT',
      fields: ['delayMs'],
    });
    expect(await refusal(y.submit('ranges', undefined, { runAt: BEFORE_YEAR_1 }))).toEqual({
      code: 'INVALID_INPUT',
      fields: ['runAt'],
    });
    expect(
      await refusal(y.submit('ranges', undefined, { runAt: YEAR_2099, deadlineMs: 1e15 })),
    ).toEqual({ code: 'INVALID_INPUT', fields: ['deadlineMs'] });
    // Nothing was created by the refused submits.
    expect((await y.listJobs()).jobs).toEqual([]);
    await y.close();
  });

  it('listing, retrying, cancelling and purging by filter refuse such a date, naming it', async () => {
    const y = yard();
    expect(await refusal(y.listJobs({ createdBefore: BEFORE_YEAR_1 }))).toEqual({
      code: 'INVALID_INPUT',
      fields: ['createdBefore'],
    });
    expect(await refusal(y.retryJobs({ createdAfter: new Date(Number.NaN) }))).toEqual({
      code: 'INVALID_INPUT',
      fields: ['createdAfter'],
    });
    expect(await refusal(y.cancelJobs({ createdAfter: BEFORE_YEAR_1 }))).toEqual({
      code: 'INVALID_INPUT',
      fields: ['createdAfter'],
    });
    expect(await refusal(y.purge({ finishedBefore: BEFORE_YEAR_1 }))).toEqual({
      code: 'INVALID_INPUT',
      fields: ['finishedBefore'],
    });
    await y.close();
  });
});

describe('other values no store can hold', () => {
  it("retry refuses a stage index past the job's stages, and an unknown job", async () => {
    const y = yard();
    const { jobId } = await y.submit('ranges', undefined);
    expect(await refusal(y.retry(jobId, { stage: 1 }))).toEqual({
      code: 'INVALID_INPUT',
      fields: ['stage'],
    });
    expect(await refusal(y.retry(jobId, { stage: 2 ** 31 }))).toEqual({
      code: 'INVALID_INPUT',
      fields: ['stage'],
    });
    expect((await refusal(y.retry('no-such-job', { stage: 0 }))).code).toBe('JOB_NOT_FOUND');
    await y.close();
  });

  it('submit refuses an idempotency key with a lone surrogate: two such keys would be one job', async () => {
    const y = yard();
    for (const key of ['\ud800', 'a\udfffb'])
      expect(await refusal(y.submit('ranges', undefined, { idempotencyKey: key }))).toEqual({
        code: 'INVALID_INPUT',
        fields: ['idempotencyKey'],
      });
    // A whole pair (an emoji) is well-formed.
    await expect(
      y.submit('ranges', undefined, { idempotencyKey: 'key-😀' }),
    ).resolves.toMatchObject({ created: true });
    await y.close();
  });
});
