import { isSwitchyardError, SerializationError, ValidationError } from '@switchyard/core';
import { taskId } from '@switchyard/core/driver';
import { afterEach, describe, expect, it } from 'vitest';
import {
  loadMigrations,
  type PostgresStore,
  postgresStore,
  postgresTransport,
} from '../src/index.js';
import { type Engine, pgliteEngine, serverAvailable, serverEngine } from './helpers.js';

const server = await serverAvailable();
const engineList: Engine[] = server ? [serverEngine(), pgliteEngine()] : [pgliteEngine()];

describe('configuration errors', () => {
  it('rejects a schema name with a quote (or anything not a plain identifier) with a ValidationError naming the field', () => {
    for (const schema of [
      'bad"name',
      "x'; DROP SCHEMA public; --",
      'UPPER',
      '1abc',
      '',
      'a'.repeat(64),
    ]) {
      const attempt = () => postgresStore({ pglite: true, schema });
      expect(attempt).toThrow(ValidationError);
      try {
        attempt();
      } catch (err) {
        expect((err as ValidationError).issues?.[0]?.path).toBe('schema');
      }
      expect(() => postgresTransport({ pglite: true, schema })).toThrow(ValidationError);
    }
  });

  it('needs exactly one connection option', () => {
    expect(() => postgresStore({})).not.toThrow();
    return expect(postgresStore({}).ping()).rejects.toMatchObject({ code: 'CONFIG_ERROR' });
  });

  it('wraps an unreachable server in BACKEND_ERROR without leaking the password', async () => {
    const store = postgresStore({
      connectionString: 'postgres://postgres:hunter2-secret@127.0.0.1:1/test',
    });
    const err = await store.ping().catch((e: unknown) => e);
    expect(isSwitchyardError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'BACKEND_ERROR' });
    expect(String((err as Error).message)).not.toContain('hunter2-secret');
    await store.close();
  });
});

for (const engine of engineList) {
  describe(`postgresStore (${engine.name})`, () => {
    let store: PostgresStore;
    afterEach(async () => {
      await store?.close();
    });
    const fresh = async () => {
      store = postgresStore({ ...engine.connection(), schema: engine.schema() });
      await store.init();
      return store;
    };
    /** A started one-stage job `jobId` with a task per input (index = position). */
    const startedJob = async (jobId: string, inputs: unknown[] = []) => {
      await store.createJob({
        id: jobId,
        name: 'x',
        params: {},
        transport: 'postgres',
        stageCount: 1,
      });
      await store.startStage(jobId, 0, 's');
      if (inputs.length > 0)
        await store.insertTasks(
          jobId,
          0,
          inputs.map((input, index) => ({ index, input })),
        );
    };

    it('applies the shipped migrations once, records them, and re-init is a no-op', async () => {
      store = postgresStore({ ...engine.connection(), schema: engine.schema() });
      const shipped = await loadMigrations();
      expect(shipped.map((m) => m.name)).toEqual([
        '000001_init.sql',
        '000002_queue.sql',
        '000003_task_redrives.sql',
        '000004_task_fillfactor.sql',
        '000005_drop_payloads.sql',
        '000006_operations.sql',
        '000008_time.sql',
        '000010_flow_control.sql',
        '000011_fairness_window.sql',
        '000012_priority.sql',
        '000013_task_row_claims.sql',
      ]);
      expect(await store.migrate()).toEqual(shipped.map((m) => m.id));
      await store.init();
      const rows = await engine.query<{ id: number; name: string }>(
        `SELECT id, name FROM "${store.schema}".migrations ORDER BY id`,
      );
      expect(rows.map((r) => r.name)).toEqual(shipped.map((m) => m.name));
      const again = postgresStore({ ...engine.connection(), schema: store.schema });
      expect(await again.migrate()).toEqual([]);
      await again.close();
      const tables = await engine.query<{ table_name: string }>(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
        [store.schema],
      );
      expect(tables.map((t) => t.table_name)).toEqual(
        [
          'counters',
          'flow_keys',
          'flow_rates',
          'flow_slots',
          'jobs',
          'leases',
          'migrations',
          'queue_dead_letters',
          'purged_metrics',
          'queue_messages',
          'schedules',
          'stages',
          'task_leases',
          'task_offers',
          'task_rows_identity',
          'tasks',
        ].sort(),
      );
    });

    it('turns values JSON cannot hold into SerializationError, never a SQL error', async () => {
      await fresh();
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      for (const params of [{ n: 10n }, cyclic, 5n]) {
        await expect(
          store.createJob({ id: 'bad', name: 'x', params, transport: 'postgres', stageCount: 1 }),
        ).rejects.toBeInstanceOf(SerializationError);
      }
      expect(await store.getJob('bad')).toBeUndefined();
      await store.createJob({
        id: 'j',
        name: 'x',
        params: {},
        transport: 'postgres',
        stageCount: 1,
      });
      await store.startStage('j', 0, 's');
      const err = await store
        .insertTasks('j', 0, [
          { index: 0, input: 1 },
          { index: 1, input: { big: 1n } },
        ])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SerializationError);
      expect((err as SerializationError).issues?.[0]?.path).toBe('tasks[1].input');
      expect((await store.listTasks('j')).tasks).toEqual([]);
      await expect(
        store.finishJob('j', { status: 'succeeded', result: () => 1 }),
      ).rejects.toMatchObject({ code: 'NOT_SERIALIZABLE' });
      await store.insertTasks('j', 0, [{ index: 0, input: 0 }]);
      const ref = { jobId: 'j', stage: 0, index: 0, taskId: taskId('j', 0, 0) };
      for (const result of [() => 1, { n: 1n }]) {
        const failed = await store
          .completeTasks([
            { ...ref, status: 'succeeded', result: 1 },
            { ...ref, status: 'succeeded', result },
          ])
          .catch((e: unknown) => e);
        expect(failed).toBeInstanceOf(SerializationError);
        expect((failed as SerializationError).issues?.[0]?.path).toBe('outcomes[1].result');
      }
      expect(await store.getTask(ref.taskId)).toMatchObject({ status: 'pending' });
    });

    it('keeps hostile strings as data', async () => {
      await fresh();
      const id = `x'); DROP TABLE "${store.schema}".jobs; --`;
      await store.createJob({ id, name: '"; --', params: null, transport: "pg'", stageCount: 1 });
      expect(await store.getJob(id)).toMatchObject({ id, name: '"; --', transport: "pg'" });
    });

    it('inserts a large fan-out in chunks, skipping existing rows, and counts created once', async () => {
      await fresh();
      await store.createJob({
        id: 'big',
        name: 'x',
        params: {},
        transport: 'postgres',
        stageCount: 1,
      });
      await store.startStage('big', 0, 's');
      const tasks = Array.from({ length: 12_345 }, (_, index) => ({
        index,
        input: { index },
        batchId: `b${index % 7}`,
      }));
      expect(await store.insertTasks('big', 0, tasks)).toBe(12_345);
      expect(await store.insertTasks('big', 0, tasks.slice(10_000))).toBe(0);
      const [stage] = await store.getStages('big');
      expect(stage?.created).toBe(12_345);
      await expect(store.insertTasks('big', 5, tasks.slice(0, 1))).rejects.toMatchObject({
        code: 'INVALID_INPUT',
      });
    });

    it('adds the fairness window to an existing database: its stages read as not windowed', async () => {
      await fresh();
      await startedJob('old', [0, 1]);
      // The database as it was before the window's migration (its stage rows already there).
      await engine.query(
        `ALTER TABLE "${store.schema}".stages DROP COLUMN released, DROP COLUMN released_at`,
      );
      await engine.query(`DELETE FROM "${store.schema}".migrations WHERE id = 11`);
      await store.close();
      store = postgresStore({ ...engine.connection(), schema: store.schema });
      expect(await store.migrate()).toEqual([11]);
      expect((await store.getStages('old'))[0]).toMatchObject({ created: 2, released: null });
      expect(
        await store.releaseTasks([{ jobId: 'old', stage: 0, window: 1, fanOut: true }]),
      ).toEqual([{ jobId: 'old', stage: 0, tasks: [{ index: 0, input: 0 }] }]);
    });

    it('releases no index whose task row is missing yet (an insert still in flight below it)', async () => {
      await fresh();
      await startedJob('gap');
      const indexes = async (fanOut: boolean) =>
        (await store.releaseTasks([{ jobId: 'gap', stage: 0, window: 10, fanOut }])).flatMap((r) =>
          r.tasks.map((t) => t.index),
        );
      const released = async () => (await store.getStages('gap'))[0]?.released;
      const insert = (list: number[]) =>
        store.insertTasks(
          'gap',
          0,
          list.map((index) => ({ index, input: index })),
        );
      // Tasks 1–3 are in (created 3), task 0 not yet: releasing 0–2 would send 1 and 2 and hand
      // task 0's message to nobody once it is inserted.
      await insert([1, 2, 3]);
      expect(await indexes(true)).toEqual([]);
      expect(await released()).toBeNull();
      // The range grows up to the first missing index, 4, and on from there once it is in.
      await insert([0, 5]);
      expect(await indexes(true)).toEqual([0, 1, 2, 3]);
      expect(await released()).toBe(4);
      await insert([4]);
      expect(await indexes(false)).toEqual([4, 5]);
      expect(await released()).toBe(6);
    });

    it("records an outcome on the task row's own page (room left for its second version)", async () => {
      await fresh();
      const n = 500;
      await startedJob(
        'hot',
        Array.from({ length: n }, (_, index) => ({ index, workMs: 0 })),
      );
      const pages = async () =>
        (
          await engine.query<{ page: string }>(
            `SELECT (ctid::text::point)[0]::bigint::text AS page FROM "${store.schema}".tasks ORDER BY idx`,
          )
        ).map((r) => r.page);
      const before = await pages();
      const refs = Array.from({ length: n }, (_, index) => ({
        jobId: 'hot',
        stage: 0,
        index,
        taskId: taskId('hot', 0, index),
      }));
      await store.completeTasks(
        refs.map((ref, index) => ({ ...ref, status: 'succeeded', result: `hello #${index}` })),
      );
      expect(new Set(before).size).toBeGreaterThan(1);
      // An update that stays on its page needs no new index entry: the barrier's largest saving.
      expect(await pages()).toEqual(before);
    });

    it('keeps working when a later migration adds a column under its prepared statements', async () => {
      for (const preparedStatements of [true, false]) {
        await store?.close();
        store = postgresStore({
          ...engine.connection(),
          schema: engine.schema(),
          poolSize: 1,
          preparedStatements,
        });
        await store.init();
        const read = async () => {
          expect(await store.getJob('j')).toMatchObject({ id: 'j', status: 'running' });
          expect(await store.getStages('j')).toHaveLength(1);
          expect(await store.getTask(taskId('j', 0, 0))).toMatchObject({ status: 'pending' });
          expect((await store.listTasks('j')).tasks).toHaveLength(2);
        };
        await startedJob('j', [0, 1]);
        await read();
        for (const table of ['jobs', 'stages', 'tasks'])
          await engine.query(`ALTER TABLE "${store.schema}".${table} ADD COLUMN later int`);
        await read();
      }
    });

    it('rejects a malformed listTasks cursor with a ValidationError', async () => {
      await fresh();
      await expect(store.listTasks('nope', { cursor: 'garbage!' })).rejects.toBeInstanceOf(
        ValidationError,
      );
    });

    it('reports metrics straight from SQL: latency, queue wait, retries, timeouts, redrives', async () => {
      await fresh();
      await startedJob('m', [0, 1]);
      await store.sealStage('m', 0, 2);
      const refs = [0, 1].map((i) => ({ jobId: 'm', stage: 0, index: i, taskId: `m.0.${i}` }));
      await store.claimTasks(refs);
      await store.retryTasks([{ ...refs[1]!, error: { name: 'E', message: 't' }, timedOut: true }]);
      await store.claimTasks([refs[1]!]);
      const done = await store.completeTasks(
        refs.map((r) => ({ ...r, status: 'succeeded' as const })),
      );
      expect(done.completedStages).toHaveLength(1);
      await store.finishJob('m', { status: 'succeeded' });
      await store.incrementCounter('postgres', 'task-message-lost', 4);
      const [m] = await store.metrics();
      expect(m).toMatchObject({
        transport: 'postgres',
        retries: 1,
        timeouts: 1,
        poisoned: 0,
        redrives: { 'task-message-lost': 4 },
      });
      expect(m?.jobs).toMatchObject({ total: 1, succeeded: 1 });
      expect(m?.queueWaitMs.mean).toBeGreaterThanOrEqual(0);
      expect(m?.queueWaitMs.p95).toBeGreaterThanOrEqual(0);
      expect((await store.getStages('m'))[0]?.running).toBe(0);
    });
  });
}
