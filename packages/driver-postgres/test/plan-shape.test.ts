/**
 * The claim, retry, barrier and release statements stay linear in their batch: each UPDATE reaches
 * its task rows by key, and a release reads its window's tasks as a range of the primary key. Joining two CTEs instead is planned as a nested loop with a join filter (Postgres
 * cannot index a CTE and estimates it at one row): quadratic in the batch. The lock order's first
 * version did that and ran the statement floor at a seventh of its speed (bench/RESULTS.md); on
 * that version each test below counts 999,000 rows removed. Each statement the store sends for a
 * 1,000-task batch of a 50,000-task stage is held back, then run under EXPLAIN ANALYZE with the
 * generic plan a prepared statement ends up with (in a transaction rolled back), and must remove
 * no row through a join filter; the release of a 1,000-task window must also read no task row
 * outside the window. On the server only (the embedded PGlite is not checked).
 */
import { type ClaimRef, type TaskOutcome, type TaskRetry, taskId } from '@switchyard/core/driver';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PostgresStore, postgresStore, postgresTransport } from '../src/index.js';
import { DATABASE_URL, randomSchema, serverAvailable } from './helpers.js';

const N = 1000;
const STAGE_TASKS = 50_000;
/** pg's own serialisation of a parameter (arrays as array literals, dates as timestamps). */
const { prepareValue } = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } })
  .utils;
const available = await serverAvailable();

/** A statement as the driver sent it. */
interface Sent {
  text: string;
  values: unknown[];
}

/**
 * A pool that keeps the statements matching `held.marker` instead of running them (answering no
 * rows), so that the statement can be explained against the state it was sent for.
 */
function holdingPool(held: { marker: RegExp | undefined; sent: Sent[] }): pg.Pool {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = (
    ...args: unknown[]
  ) => {
    const [first, second] = args;
    const statement: Sent =
      typeof first === 'string'
        ? { text: first, values: (second as unknown[] | undefined) ?? [] }
        : {
            text: (first as { text: string }).text,
            values: (first as { values?: unknown[] }).values ?? [],
          };
    if (!held.marker?.test(statement.text)) return query(...args);
    held.sent.push(statement);
    return Promise.resolve({ rows: [], rowCount: 0, fields: [], command: 'SELECT' });
  };
  return pool;
}

/** Rows every node of an EXPLAIN (ANALYZE, FORMAT JSON) plan removed through a join filter. */
function joinFilterRemovals(node: Record<string, unknown>): number {
  const own = Number(node['Rows Removed by Join Filter'] ?? 0);
  const children = (node.Plans as Record<string, unknown>[] | undefined) ?? [];
  return own + children.reduce((sum, child) => sum + joinFilterRemovals(child), 0);
}

/** The scans of `relation` in a plan, each node as EXPLAIN (FORMAT JSON) gives it. */
function scansOf(node: Record<string, unknown>, relation: string): Record<string, unknown>[] {
  const own = node['Relation Name'] === relation ? [node] : [];
  const children = (node.Plans as Record<string, unknown>[] | undefined) ?? [];
  return [...own, ...children.flatMap((child) => scansOf(child, relation))];
}

describe.skipIf(!available)('plan shape of the batch statements (server)', () => {
  const schema = randomSchema('plan');
  const held: { marker: RegExp | undefined; sent: Sent[] } = { marker: undefined, sent: [] };
  let pool: pg.Pool;
  let store: PostgresStore;
  let admin: pg.Client;

  beforeAll(async () => {
    pool = holdingPool(held);
    store = postgresStore({ pool, schema });
    await store.init();
    admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await store.createJob({ id: 'j', name: 'plan', params: {}, transport: 't', stageCount: 1 });
    await store.startStage('j', 0, 's');
    // A stage far larger than a batch, as in a real fan-out (and in the case that was quadratic).
    for (let from = 0; from < STAGE_TASKS; from += 5000)
      await store.insertTasks(
        'j',
        0,
        Array.from({ length: 5000 }, (_, i) => ({ index: from + i, input: { index: from + i } })),
      );
    await store.sealStage('j', 0, STAGE_TASKS);
    await admin.query(`ANALYZE "${schema}".tasks`);
  });
  afterAll(async () => {
    await admin?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin?.end();
    await store?.close();
    await pool?.end();
  });

  /**
   * Runs `call` holding back the statement it sends that matches `marker`, then runs that
   * statement under EXPLAIN ANALYZE with a generic plan — the plan a prepared statement settles on
   * after its first executions, which knows no array's length — in a transaction rolled back.
   * Returns the plan's root node.
   */
  async function explained(
    marker: RegExp,
    call: () => Promise<unknown>,
  ): Promise<Record<string, unknown>> {
    held.marker = marker;
    held.sent = [];
    await call().finally(() => {
      held.marker = undefined;
    });
    const statement = held.sent[0];
    expect(statement, `no statement matching ${marker}`).toBeDefined();
    const { text, values } = statement!;
    await admin.query(`PREPARE plan_shape AS ${text}`);
    await admin.query('BEGIN');
    try {
      await admin.query('SET LOCAL plan_cache_mode = force_generic_plan');
      // EXECUTE takes no bind parameters: the values go as literals, serialised as pg sends them.
      const args = values.map((v) =>
        v === null || v === undefined ? 'NULL' : admin.escapeLiteral(String(prepareValue(v))),
      );
      const { rows } = await admin.query<{ 'QUERY PLAN': [{ Plan: Record<string, unknown> }] }>(
        `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE plan_shape(${args.join(', ')})`,
      );
      return rows[0]!['QUERY PLAN'][0].Plan;
    } finally {
      await admin.query('ROLLBACK');
      await admin.query('DEALLOCATE plan_shape');
    }
  }

  /** Rows the statement matching `marker` removes through a join filter (see `explained`). */
  async function removals(marker: RegExp, call: () => Promise<unknown>): Promise<number> {
    return joinFilterRemovals(await explained(marker, call));
  }

  const refs = (): ClaimRef[] =>
    Array.from({ length: N }, (_, index) => ({
      jobId: 'j',
      stage: 0,
      index,
      taskId: taskId('j', 0, index),
      minAttempt: 1,
    }));

  it('a claim of 1,000 redelivered tasks', async () => {
    expect(await removals(/claimed AS/, () => store.claimTasks(refs()))).toBe(0);
  });

  it('a retry of 1,000 failed attempts', async () => {
    const retries: TaskRetry[] = refs().map((r) => ({
      ...r,
      attempt: 1,
      startedAt: new Date(),
      error: { name: 'Error', message: 'again' },
    }));
    expect(await removals(/retried AS/, () => store.retryTasks(retries))).toBe(0);
  });

  it('a barrier batch of 1,000 outcomes', async () => {
    const outcomes: TaskOutcome[] = refs().map((r) => ({
      ...r,
      attempt: 1,
      startedAt: new Date(),
      status: 'succeeded',
      result: r.index,
    }));
    expect(await removals(/done AS/, () => store.completeTasks(outcomes))).toBe(0);
  });

  it('a release of a 1,000-task window', async () => {
    const plan = await explained(/bounds AS/, () =>
      store.releaseTasks([{ jobId: 'j', stage: 0, window: N, fanOut: true }]),
    );
    expect(joinFilterRemovals(plan)).toBe(0);
    // Both reads of the window (how far it may grow, then the pending tasks with their inputs)
    // are ranges of the primary key, of the window's rows only; no read of the whole stage.
    const reads = scansOf(plan, 'tasks');
    expect(reads.length).toBeGreaterThan(0);
    for (const read of reads) {
      expect(read['Node Type']).toMatch(/^(Index Scan|Index Only Scan|Bitmap Heap Scan)$/);
      // A bitmap read takes its range from its index scan below.
      const range =
        read['Node Type'] === 'Bitmap Heap Scan'
          ? (read.Plans as Record<string, unknown>[])[0]!
          : read;
      expect(range['Index Name']).toBe('tasks_pkey');
      expect(range['Index Cond']).toMatch(/idx >= .*idx < /);
      expect(Number(read['Actual Rows']) * Number(read['Actual Loops'])).toBe(N);
    }
    // One stage answered, with the window's tasks.
    expect(plan['Actual Rows']).toBe(1);
  });

  it('a receive of 500 task messages from a queue of 50,000, across its priority lanes', async () => {
    const transport = postgresTransport({ pool, schema });
    try {
      for (let from = 0; from < STAGE_TASKS; from += 1000)
        await transport.send(
          'task',
          Array.from({ length: 1000 }, (_, i) => ({ body: `m${from + i}` })),
        );
      await admin.query(`ANALYZE "${schema}".queue_messages`);
      const plan = await explained(/first_lane AS/, () =>
        transport.receive('task', { maxMessages: 500 }),
      );
      // Each lane is a range of the due index and the update finds its rows by primary key: the
      // statement touches the messages it takes, never the whole queue.
      const reads = scansOf(plan, 'queue_messages').filter((n) => n['Node Type'] !== 'ModifyTable');
      expect(reads.length).toBeGreaterThan(0);
      for (const read of reads) {
        expect(read['Node Type']).toMatch(/^Index Scan$/);
        expect(Number(read['Actual Rows']) * Number(read['Actual Loops'])).toBeLessThanOrEqual(500);
      }
      expect(plan['Actual Rows']).toBe(500);
    } finally {
      await transport.close();
    }
  });
});
