/**
 * Replaying dead-lettered task messages through a Switchyard on PostgreSQL (store and queue): a
 * replayed task message re-opens its task, which runs again, and the job finishes; a letter whose
 * task cannot run again is refused and stays dead-lettered — never dropped.
 */
import {
  createSwitchyard,
  defineJob,
  defineTask,
  type Switchyard,
  silentLogger,
  stage,
} from '@switchyard/core';
import type { Transport } from '@switchyard/core/driver';
import { afterEach, describe, expect, it } from 'vitest';
import { postgresStore, postgresTransport } from '../src/index.js';
import { DATABASE_URL, serverAvailable, serverEngine } from './helpers.js';

const server = await serverAvailable();
const engine = serverEngine();

/** Task 2 throws while `broken.on`; every run is counted per task index. */
function fragileJob(broken: { on: boolean }, runs: Map<number, number>) {
  const fragile = defineTask({
    name: 'fragile',
    retry: { maxAttempts: 1 },
    handler: (i: number) => {
      runs.set(i, (runs.get(i) ?? 0) + 1);
      if (i === 2 && broken.on) throw new Error('broken for now');
      return i * 10;
    },
  });
  return defineJob({
    name: 'fragile',
    stages: [stage({ name: 'only', task: fragile, fanOut: () => [0, 1, 2, 3] })],
  });
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

function start(packTasks: number, broken: { on: boolean }, runs: Map<number, number>) {
  const schema = engine.schema();
  const transport = postgresTransport({
    connectionString: DATABASE_URL,
    schema,
    poolSize: 3,
    pollIntervalMs: 50,
  });
  const yard = createSwitchyard({
    jobs: [fragileJob(broken, runs)],
    store: postgresStore({ connectionString: DATABASE_URL, schema, poolSize: 3 }),
    transports: { postgres: transport },
    batching: { packTasks },
    logger: silentLogger,
    reconcile: { intervalMs: 0 },
  });
  const controller = new AbortController();
  const working = yard.work({ signal: controller.signal, waitMs: 100, concurrency: 8 });
  stops.push(async () => {
    controller.abort();
    await working;
    await yard.close();
  });
  return { yard, transport };
}

/** The task queue's dead letters, once there are `count` (dead-lettering is settled a moment later). */
async function deadLetters(transport: Transport, count: number) {
  for (let i = 0; ; i++) {
    const list = await transport.listDeadLetters!('task');
    if (list.length >= count || i >= 300) return list;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function failed(yard: Switchyard, jobId: string) {
  const view = await yard.waitFor(jobId, { pollIntervalMs: 50 });
  expect(view.status).toBe('failed');
}

describe.skipIf(!server).each([1, 4])('dead-letter replay on PostgreSQL (packTasks %i)', (pack) => {
  it('re-opens the replayed task, which runs again, and the job finishes', async () => {
    const broken = { on: true };
    const runs = new Map<number, number>();
    const { yard, transport } = start(pack, broken, runs);
    const { jobId } = await yard.submit('fragile', undefined);
    await failed(yard, jobId);
    const [letter] = await deadLetters(transport, 1);
    expect(letter?.body).toContain(jobId);

    broken.on = false;
    expect(await yard.replayDeadLetters('postgres', 'task')).toBe(1);
    const view = await yard.waitFor(jobId, { pollIntervalMs: 50 });
    expect(view.status).toBe('succeeded');
    expect(view.stages[0]).toMatchObject({ total: 4, succeeded: 4, failed: 0 });
    const results: unknown[] = [];
    for await (const r of yard.results(jobId)) results.push(r.result);
    expect(results).toEqual([0, 10, 20, 30]);
    // Task 2 ran twice (failed, then replayed); the others once — a pack's other tasks too.
    expect([...runs.entries()].sort()).toEqual([
      [0, 1],
      [1, 1],
      [2, 2],
      [3, 1],
    ]);
    expect(await transport.listDeadLetters!('task')).toEqual([]);
  });

  it('refuses a letter whose task succeeded since (retried), and keeps it dead-lettered', async () => {
    const broken = { on: true };
    const runs = new Map<number, number>();
    const { yard, transport } = start(pack, broken, runs);
    const { jobId } = await yard.submit('fragile', undefined);
    await failed(yard, jobId);
    const [letter] = await deadLetters(transport, 1);

    broken.on = false;
    expect(await yard.retry(jobId)).toMatchObject({ retried: 1, status: 'running' });
    expect((await yard.waitFor(jobId, { pollIntervalMs: 50 })).status).toBe('succeeded');
    expect(await yard.replayDeadLetters('postgres', 'task')).toBe(0);
    const kept = await transport.listDeadLetters!('task');
    expect(kept.map((l) => [l.id, l.body])).toEqual([[letter!.id, letter!.body]]);
    // Nothing ran again: the job's result stands.
    expect(runs.get(2)).toBe(2);
    expect((await yard.getJob(jobId))?.stages[0]).toMatchObject({ succeeded: 4, failed: 0 });
  });
});
