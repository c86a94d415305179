/**
 * A message this transport sends wakes its own receivers waiting on that queue as soon as the send
 * commits: a stage hop within one process does not wait for the NOTIFY's trip through the server
 * (nor, if notifications are lost, for the next poll).
 */
import { encodeEnvelope } from '@switchyard/core/driver';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { type PostgresTransport, postgresTransport } from '../src/index.js';
import { DATABASE_URL, serverAvailable, serverEngine } from './helpers.js';

const server = await serverAvailable();
const engine = serverEngine();

/** A pool whose connections never deliver notifications: only a local wake-up can end a wait. */
function deafPool(): pg.Pool {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  pool.on('connect', (client) => {
    const emit = client.emit.bind(client);
    client.emit = (event, ...args) => event !== 'notification' && emit(event, ...args);
  });
  return pool;
}

const stageMessage = (jobId: string) => ({
  body: encodeEnvelope({ v: 1, kind: 'stage', jobId, stage: 0 }),
});

describe.runIf(server)('postgres transport: own sends wake own receivers', () => {
  const pools: pg.Pool[] = [];
  const transports: PostgresTransport[] = [];
  afterEach(async () => {
    for (const t of transports.splice(0)) await t.close();
    for (const p of pools.splice(0)) await p.end();
  });

  it('a waiting receive returns with a message this transport sent, without a notification or a poll', async () => {
    const schema = engine.schema();
    const pool = deafPool();
    pools.push(pool);
    const hour = 3_600_000;
    const local = postgresTransport({ pool, schema, pollIntervalMs: hour });
    const other = postgresTransport({
      connectionString: DATABASE_URL,
      schema,
      pollIntervalMs: hour,
    });
    transports.push(local, other);
    await local.ping?.();
    await other.ping?.();
    const abort = new AbortController();
    const waiting = local.receive('stage', {
      maxMessages: 10,
      waitMs: hour,
      abortSignal: abort.signal,
    });
    // Once its first look found nothing: another process's send. No notification reaches this
    // pool, and the poll is an hour away.
    await new Promise((r) => setTimeout(r, 200));
    await other.send('stage', [stageMessage('from-elsewhere')]);
    const quiet = await Promise.race([
      waiting.then(() => 'returned'),
      new Promise((r) => setTimeout(() => r('still waiting'), 300)),
    ]);
    expect(quiet).toBe('still waiting');
    // Its own send wakes it.
    await local.send('stage', [stageMessage('from-here')]);
    const got = await Promise.race([
      waiting,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('not woken by its own send')), 10_000),
      ),
    ]);
    expect(got.map((m) => JSON.parse(m.body).jobId).sort()).toEqual([
      'from-elsewhere',
      'from-here',
    ]);
    abort.abort();
  });
});
