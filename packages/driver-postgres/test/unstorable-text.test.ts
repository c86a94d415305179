/**
 * Text PostgreSQL cannot store (U+0000 in an id or a key), a date out of its range or a forged
 * cursor is the caller's input at fault: the store answers `INVALID_INPUT`, never `BACKEND_ERROR`
 * (which hosts report as "backend unavailable").
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type PostgresStore, postgresStore } from '../src/index.js';
import { engines } from './helpers.js';

const open: PostgresStore[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

describe.each(await engines())('U+0000 in text ($name)', (engine) => {
  const store = async () => {
    const s = postgresStore({ ...engine.connection(), schema: engine.schema() });
    open.push(s);
    await s.init();
    return s;
  };

  it('a job id with U+0000 is INVALID_INPUT, not a backend error', async () => {
    const s = await store();
    await expect(s.getJob('a\u0000b')).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringContaining('U+0000'),
    });
  });

  it('an idempotency key with U+0000 is INVALID_INPUT; nothing is written', async () => {
    const s = await store();
    await expect(
      s.createJob({
        id: 'j-1',
        name: 'job',
        params: {},
        transport: 'memory',
        stageCount: 1,
        idempotencyKey: 'k\u0000',
      }),
    ).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    expect(await s.getJob('j-1')).toBeUndefined();
  });

  it('a date PostgreSQL cannot store is INVALID_INPUT, not a backend error', async () => {
    const s = await store();
    // JavaScript's first instant, 271,821 BC; PostgreSQL's timestamps start at 4713 BC (22008).
    await expect(s.listJobs({ createdBefore: new Date(-8.64e15) })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    });
  });

  it('a forged jobs cursor (a time no job can have, U+0000 in its id) names the cursor', async () => {
    const s = await store();
    for (const forged of ['9223372036854775807:x', '1796557858197000:a\u0000b'])
      await expect(
        s.listJobs({ cursor: Buffer.from(forged).toString('base64url') }),
      ).rejects.toMatchObject({
        code: 'INVALID_INPUT',
        issues: [{ path: 'cursor', message: 'not a cursor from listJobs' }],
      });
  });

  it('a malformed cursor names the field without a driver prefix', async () => {
    const s = await store();
    await expect(s.listTasks('j-1', { cursor: 'nonsense' })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: 'cursor is not one a previous page returned',
      issues: [{ path: 'cursor', message: 'not a cursor from a previous page' }],
    });
  });
});
