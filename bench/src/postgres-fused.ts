/**
 * The fused claim's statement floor: the task row as its own queue message, with no engine and no
 * transport. `n` task rows of one stage are inserted through `insertTasks` (as the statement floor
 * does), then concurrent claimers loop: one statement claims up to `batch` due, pending rows of the
 * stage (`FOR NO KEY UPDATE SKIP LOCKED`), counts the attempt and leases them, returning what a
 * handler needs; the claimed rows are recorded through the store's barrier (`completeTasks`) in
 * group commits shaped like the engine's. Each claim design ({@link CLAIM_DESIGNS}) runs in its own
 * schema, dropped afterwards, beside graphile-worker and the statement floor of the same process.
 * @module
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { type TaskOutcome, taskId } from '@switchyard/core/driver';
import { type PostgresStore, postgresStore } from '@switchyard/driver-postgres';
import pg from 'pg';
import { cpuMeter, DATABASE_URL, dropSchema, schemaName } from './lib/postgres.js';
import { graphileWorker, startOneStageJob, statementFloor } from './postgres.js';

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** One way of claiming task rows. `s` is the quoted schema in every builder. */
export interface ClaimDesign {
  /** Which index finds the due rows, and what the claim and the barrier do to it. */
  readonly summary: string;
  /** Statements run after the store's migrations, before any task row exists. */
  readonly ddl: (s: string) => string[];
  /**
   * The claim statement: $1 job id, $2 stage, $3 most rows, $4 lease in ms (and $5 the cursor);
   * returns what a handler needs: `idx`, `attempts` (this attempt's number) and `input`.
   */
  readonly claim: (s: string) => string;
  /** Task-row updates the claim makes per task (1, or 0 when it writes no task row). */
  readonly rowWrites: 0 | 1;
  /**
   * The claim starts at `$5`, an index below which this process claimed everything already (a
   * scan over the primary key would otherwise read every finished row of the stage again).
   */
  readonly cursor: boolean;
}

/**
 * A claim that locks and updates task rows: the CTE locks up to $3 rows matching `due` in the
 * order `order` (the order of the index it reads), skipping rows another claim holds; the UPDATE
 * adds `set` to the attempt count, the lease and the start time. `join` is how the UPDATE finds the
 * locked rows: by primary key, as graphile-worker's `get_job` does by id, or by `ctid`, a TID scan
 * instead of a primary-key descent per row (the CTE returns the locked version's ctid, and nothing
 * can update a locked row before this UPDATE does).
 */
const rowClaim =
  (due: string, order: string, set: string, join: 'key' | 'ctid' = 'key') =>
  (s: string) =>
    `
WITH due AS (
  SELECT ${join === 'ctid' ? 'ctid' : 'job_id, stage, idx'}
    FROM ${s}.tasks
   WHERE job_id = $1 AND stage = $2::int AND ${due}
   ORDER BY ${order}
   LIMIT $3::int
     FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE ${s}.tasks t
   SET ${set}
       attempts = t.attempts + 1,
       locked_until = now() + $4::int * interval '1 millisecond',
       started_at = coalesce(t.started_at, now()),
       updated_at = now()
  FROM due
 WHERE ${join === 'ctid' ? 't.ctid = due.ctid' : '(t.job_id, t.stage, t.idx) = (due.job_id, due.stage, due.idx)'}
RETURNING t.idx, t.attempts, t.input`;

/**
 * Columns the row-claim designs add: the due time a retry would move (rows are due when inserted)
 * and the lease (when a claimed row's attempt counts as lost). Nullable with a stable default:
 * adding them to the empty table writes nothing.
 */
const DUE_AND_LEASE = (s: string) =>
  `ALTER TABLE ${s}.tasks ADD COLUMN due_at timestamptz DEFAULT now(), ADD COLUMN locked_until timestamptz`;

const PK_CURSOR_DUE = `idx >= $5::int AND status = 'pending' AND due_at <= now()`;

/**
 * The claim designs measured. HOT (heap-only tuple) updates need every indexed column unchanged —
 * index keys and partial-index predicates alike — and room on the row's page (the store's
 * `tasks` has fillfactor 40). The store's own `tasks` indexes are the primary key
 * (job_id, stage, idx) and `tasks_waiting_idx` (job_id, stage) WHERE waiting IS NOT NULL, which
 * neither the claim nor the barrier touches.
 */
export const CLAIM_DESIGNS = {
  /** (a) Status moves to running; a partial index holds pending rows. Claim and barrier not HOT. */
  status: {
    summary:
      "claim sets status 'running' (leaves the pending index); index on pending rows; barrier's status change is in that predicate too",
    ddl: (s) => [
      DUE_AND_LEASE(s),
      `CREATE INDEX tasks_pending_idx ON ${s}.tasks (job_id, stage, due_at, idx) WHERE status = 'pending'`,
    ],
    claim: rowClaim(`status = 'pending' AND due_at <= now()`, 'due_at, idx', `status = 'running',`),
    rowWrites: 1,
    cursor: false,
  },
  /**
   * (b) Status stays pending, the lease alone marks the claim: a HOT claim. The pending index
   * keeps claimed rows until the barrier (not HOT) moves their status; claims read past them.
   */
  lease: {
    summary:
      'claim writes only unindexed columns (lease, attempts): HOT; claimed rows stay in the pending index until the barrier (not HOT) finishes them',
    ddl: (s) => [
      DUE_AND_LEASE(s),
      `CREATE INDEX tasks_pending_idx ON ${s}.tasks (job_id, stage, due_at, idx) WHERE status = 'pending'`,
    ],
    claim: rowClaim(
      `status = 'pending' AND due_at <= now() AND (locked_until IS NULL OR locked_until <= now())`,
      'due_at, idx',
      '',
    ),
    rowWrites: 1,
    cursor: false,
  },
  /**
   * (c) The claim clears the due time, which takes the row out of a due index (not HOT); status is
   * not indexed, so the barrier is HOT. A retry sets the due time again; an expired lease needs a
   * sweep that does the same.
   */
  'due-cleared': {
    summary:
      "claim sets due_at NULL and status 'running' (leaves the due index; not HOT); status unindexed: barrier HOT",
    ddl: (s) => [
      DUE_AND_LEASE(s),
      `CREATE INDEX tasks_due_idx ON ${s}.tasks (job_id, stage, due_at, idx) WHERE due_at IS NOT NULL`,
    ],
    claim: rowClaim('due_at <= now()', 'due_at, idx', `status = 'running', due_at = NULL,`),
    rowWrites: 1,
    cursor: false,
  },
  /**
   * (d) No index beyond the store's: the claim reads the primary key from a cursor. Claim and
   * barrier both HOT. Rows below the cursor (retries, expired leases) need a sweep from index 0.
   */
  'pk-cursor': {
    summary:
      "no extra index: claim scans the primary key from a cursor, sets status 'running' (unindexed): claim and barrier HOT",
    ddl: (s) => [DUE_AND_LEASE(s)],
    claim: rowClaim(PK_CURSOR_DUE, 'idx', `status = 'running',`),
    rowWrites: 1,
    cursor: true,
  },
  /** (e) (d) with the UPDATE finding the locked rows by ctid. */
  'pk-cursor-ctid': {
    summary: 'pk-cursor, the UPDATE joining the locked rows by ctid (TID scan) instead of by key',
    ddl: (s) => [DUE_AND_LEASE(s)],
    claim: rowClaim(PK_CURSOR_DUE, 'idx', `status = 'running',`, 'ctid'),
    rowWrites: 1,
    cursor: true,
  },
  /**
   * (f) First attempts claimed by index range, writing no task row: a stage-row counter hands out
   * the next $3 indexes (a HOT update: `stages` is indexed by its key alone) and a range lease row
   * records them; the rows are only read. As a pack admission today, the first attempt's start is
   * written by the barrier. Retries and the tasks of an expired range lease would get a due time
   * and go through a row claim on `tasks_retry_idx`, which holds no row until then (a row enters
   * a partial index only when it matches the predicate), so inserts write no entry into it.
   */
  'stage-range': {
    summary:
      'claim takes the next index range from a stage-row counter and a range lease row, reads the rows, writes no task row; barrier HOT',
    ddl: (s) => [
      `ALTER TABLE ${s}.tasks ADD COLUMN due_at timestamptz, ADD COLUMN locked_until timestamptz`,
      `CREATE INDEX tasks_retry_idx ON ${s}.tasks (job_id, stage, due_at, idx) WHERE due_at IS NOT NULL`,
      `ALTER TABLE ${s}.stages ADD COLUMN claimed int NOT NULL DEFAULT 0`,
      `CREATE TABLE ${s}.task_ranges (job_id text, stage int, lo int, hi int, locked_until timestamptz NOT NULL, PRIMARY KEY (job_id, stage, lo))`,
    ],
    claim: (s) => `
WITH r AS (
  UPDATE ${s}.stages
     SET claimed = claimed + $3::int
   WHERE job_id = $1 AND idx = $2::int AND claimed < coalesce(total, created)
  RETURNING claimed - $3::int AS lo, least(claimed, coalesce(total, created)) AS hi
), lease AS (
  INSERT INTO ${s}.task_ranges (job_id, stage, lo, hi, locked_until)
  SELECT $1, $2::int, lo, hi, now() + $4::int * interval '1 millisecond' FROM r
)
SELECT t.idx, t.attempts + 1 AS attempts, t.input
  FROM r
  JOIN ${s}.tasks t ON t.job_id = $1 AND t.stage = $2::int AND t.idx >= r.lo AND t.idx < r.hi
 WHERE t.status = 'pending' AND t.due_at IS NULL`,
    rowWrites: 0,
    cursor: false,
  },
} satisfies Record<string, ClaimDesign>;

/** A design's name. */
export type ClaimDesignName = keyof typeof CLAIM_DESIGNS;

interface ClaimedRow {
  idx: number;
  attempts: number;
  input: unknown;
}

/**
 * The engine's barrier batching (core's `DEFAULTS.batchers.completions`): outcomes added while
 * statements are in flight go out together, up to `maxBatch` per `completeTasks` statement and
 * `maxInFlight` statements at once; a batch leaves on the next turn of the event loop, so one
 * tick's callers share it.
 */
class GroupCommit {
  private pending: {
    outcomes: TaskOutcome[];
    resolve: () => void;
    reject: (e: unknown) => void;
  }[] = [];
  private inFlight = 0;
  private scheduled = false;
  /** Outcomes the barrier applied, and whether one of its statements completed the stage. */
  applied = 0;
  completedStage = false;

  constructor(
    private readonly store: PostgresStore,
    private readonly maxBatch = 1000,
    private readonly maxInFlight = 3,
  ) {}

  add(outcomes: TaskOutcome[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ outcomes, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.pending.length === 0 || this.inFlight >= this.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.pending.length === 0 || this.inFlight >= this.maxInFlight) return;
    let size = 0;
    let take = 0;
    while (
      take < this.pending.length &&
      (take === 0 || size + this.pending[take]!.outcomes.length <= this.maxBatch)
    )
      size += this.pending[take++]!.outcomes.length;
    const batch = this.pending.splice(0, take);
    this.inFlight++;
    this.store
      .completeTasks(batch.flatMap((b) => b.outcomes))
      .then(
        (result) => {
          this.applied += result.applied.length;
          if (result.completedStages.length > 0) this.completedStage = true;
          for (const b of batch) b.resolve();
        },
        (err: unknown) => {
          for (const b of batch) b.reject(err);
        },
      )
      .finally(() => {
        this.inFlight--;
        this.schedule();
      });
    this.schedule();
  }
}

/** The succeeded outcomes of claimed rows, as a handler's would be. */
function outcomesOf(jobId: string, rows: readonly ClaimedRow[]): TaskOutcome[] {
  const startedAt = new Date();
  return rows.map((r) => ({
    jobId,
    stage: 0,
    index: r.idx,
    taskId: taskId(jobId, 0, r.idx),
    status: 'succeeded' as const,
    result: `hello #${r.idx}`,
    attempt: r.attempts,
    startedAt,
  }));
}

/**
 * Updates and HOT updates of the schema's `tasks`, once the statistics system counts at least
 * `expectedUpdates`: a backend flushes its counts when it exits (or, idle, up to 10 s later), so
 * the connections that wrote are closed before this is called.
 */
async function tupleStats(
  admin: pg.Pool,
  schema: string,
  expectedUpdates: number,
): Promise<{ updates: number; hot: number }> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { rows } = await admin.query<{ updates: string; hot: string }>(
      `SELECT n_tup_upd AS updates, n_tup_hot_upd AS hot FROM pg_stat_user_tables
        WHERE schemaname = $1 AND relname = 'tasks'`,
      [schema],
    );
    const updates = Number(rows[0]?.updates ?? 0);
    if (updates >= expectedUpdates) return { updates, hot: Number(rows[0]?.hot ?? 0) };
    if (Date.now() > deadline)
      throw new Error(`pg_stat_user_tables counts ${updates} updates of ${expectedUpdates}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `part / whole` to three decimals; null when there is no whole (no update to share out). */
const share = (part: number, whole: number) =>
  whole === 0 ? null : Math.round((part / whole) * 1000) / 1000;

/** Inserts `n` task rows of job `jobId`'s stage 0 in chunks of 2,000, then seals the stage. */
async function insertStage(store: PostgresStore, jobId: string, n: number): Promise<void> {
  for (let start = 0; start < n; start += 2000) {
    const tasks = Array.from({ length: Math.min(2000, n - start) }, (_, i) => ({
      index: start + i,
      input: { i: start + i, workMs: 0 },
    }));
    await store.insertTasks(jobId, 0, tasks);
  }
  await store.sealStage(jobId, 0, n);
}

/**
 * Clock ticks of CPU used so far by each server backend whose `application_name` is `app`, read
 * from /proc (Linux, local server); empty when they cannot be read.
 */
async function backendTicks(admin: pg.Pool, app: string): Promise<Map<number, number>> {
  const ticks = new Map<number, number>();
  const { rows } = await admin.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
    [app],
  );
  for (const { pid } of rows) {
    try {
      // Fields after the command: utime is [11], stime [12].
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks.set(pid, Number(fields[11]) + Number(fields[12]));
    } catch {
      // Not on this machine, or gone.
    }
  }
  return ticks;
}

/** A pool of `max` connections named `app`, set up as the store's own (generic plans), kept open. */
const benchPool = (app: string, max: number) =>
  new pg.Pool({
    connectionString: DATABASE_URL,
    max,
    application_name: app,
    options: '-c plan_cache_mode=force_generic_plan',
    idleTimeoutMillis: 0,
  });

/** Runs a design's claim on `db` for job `jobId`'s stage 0. */
async function claimRows(
  db: pg.Pool | pg.Client,
  design: ClaimDesign,
  text: string,
  jobId: string,
  batch: number,
  from: number,
): Promise<ClaimedRow[]> {
  const values = [jobId, 0, batch, 60_000, ...(design.cursor ? [from] : [])];
  return (await db.query<ClaimedRow>({ name: 'fused_claim', text, values })).rows;
}

/**
 * Each statement's HOT share alone, after the run: 2,000 rows of a second job claimed by one
 * connection, closed; then completed through the barrier by another, closed.
 */
async function hotProbe(
  admin: pg.Pool,
  schema: string,
  design: ClaimDesign,
  before: { updates: number; hot: number },
): Promise<{ claim: number | null; barrier: number | null }> {
  const probe = 2000;
  const pool = benchPool('switchyard_bench_probe', 1);
  const store = postgresStore({ pool, schema });
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  let clientOpen = true;
  try {
    await store.createJob({
      id: 'probe',
      name: 'probe',
      params: {},
      transport: 'postgres',
      stageCount: 1,
    });
    await store.startStage('probe', 0, 's');
    await insertStage(store, 'probe', probe);
    const text = design.claim(`"${schema}"`);
    const claimed: ClaimedRow[] = [];
    for (;;) {
      const rows = await claimRows(client, design, text, 'probe', 500, 0);
      if (rows.length === 0) break;
      claimed.push(...rows);
    }
    clientOpen = false;
    await client.end();
    const claims = await tupleStats(admin, schema, before.updates + probe * design.rowWrites);
    for (let i = 0; i < claimed.length; i += 1000)
      await store.completeTasks(outcomesOf('probe', claimed.slice(i, i + 1000)));
    await store.close();
    await pool.end();
    const completions = await tupleStats(admin, schema, claims.updates + probe);
    return {
      claim: share(claims.hot - before.hot, claims.updates - before.updates),
      barrier: share(completions.hot - claims.hot, completions.updates - claims.updates),
    };
  } finally {
    if (clientOpen) await client.end();
    await store.close();
    if (!pool.ended) await pool.end();
  }
}

/** Options of one fused-floor run. */
export interface FusedRunOptions {
  /** Task rows of the stage. */
  n: number;
  /** Concurrent claim loops, one connection each. */
  claimers: number;
  /** Most rows per claim statement. */
  batch: number;
  /** `tasks`' fillfactor; the store's migration sets 40. */
  fillfactor?: number;
}

/** What one fused-floor run measured. */
export interface FusedRunResult {
  tasksPerSecond: number;
  insertSeconds: number;
  drainSeconds: number;
  /**
   * CPU microseconds per task from the first insert to the stage's completion: this process, every
   * PostgreSQL process on the machine (as the other parts count it), and the run's own backends.
   */
  cpuMicrosPerTask: { node: number; postgres?: number; ownBackends?: number };
  /** WAL the server wrote from the first insert to the stage's completion, per task. */
  walBytesPerTask: number;
  /**
   * HOT share of `tasks` updates (n_tup_hot_upd / n_tup_upd) over the run, and each statement's
   * alone on 2,000 rows claimed, then completed, afterwards ({@link hotProbe}).
   */
  hot: { run: number | null; claim: number | null; barrier: number | null };
  /** Sizes after the run, in kB: the heap and every index of `tasks`. */
  tableKb: number;
  indexesKb: number;
  /** Claim statements that returned rows. */
  claims: number;
}

/**
 * One claim design on its own schema: `n` rows inserted through `insertTasks`, then `claimers`
 * loops claiming up to `batch` rows per statement and recording them through the barrier until
 * the stage completes; tasks/s over both phases, CPU per task, the HOT share of `tasks` updates.
 * @param admin a pool for DDL and statistics.
 * @param name the claim design ({@link CLAIM_DESIGNS}).
 */
export async function fusedRun(
  admin: pg.Pool,
  name: ClaimDesignName,
  options: FusedRunOptions,
): Promise<FusedRunResult> {
  const design: ClaimDesign = CLAIM_DESIGNS[name];
  const { n, claimers, batch } = options;
  const schema = schemaName('fused');
  const s = `"${schema}"`;
  // Named, so that the run's own backends can be told from any other client of the server.
  const app = `switchyard_bench_${schema}`;
  const storePool = benchPool(app, 4);
  const claimPool = benchPool(app, claimers);
  const store = postgresStore({ pool: storePool, schema });
  let open = true;
  const close = async () => {
    if (!open) return;
    open = false;
    await store.close();
    await Promise.all([storePool.end(), claimPool.end()]);
  };
  const claimText = design.claim(s);
  try {
    await startOneStageJob(store, 'fused', 'fused');
    for (const ddl of design.ddl(s)) await admin.query(ddl);
    if (options.fillfactor !== undefined)
      await admin.query(`ALTER TABLE ${s}.tasks SET (fillfactor = ${Number(options.fillfactor)})`);

    const ticks0 = await backendTicks(admin, app);
    const lsn = async () =>
      (await admin.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn'))
        .rows[0]!.lsn;
    const lsn0 = await lsn();
    const t0 = performance.now();
    const cpu = cpuMeter();
    await insertStage(store, 'fused', n);
    const t1 = performance.now();
    const barrier = new GroupCommit(store);
    // The next index after the highest claimed so far (the cursor design's start).
    let cursor = 0;
    let claims = 0;
    const claimer = async () => {
      for (;;) {
        let rows = await claimRows(claimPool, design, claimText, 'fused', batch, cursor);
        // Nothing from the cursor on: sweep the stage from its start once before stopping.
        if (rows.length === 0 && design.cursor && cursor > 0)
          rows = await claimRows(claimPool, design, claimText, 'fused', batch, 0);
        if (rows.length === 0) return;
        claims++;
        for (const r of rows) if (r.idx >= cursor) cursor = r.idx + 1;
        await barrier.add(outcomesOf('fused', rows));
      }
    };
    await Promise.all(Array.from({ length: claimers }, claimer));
    const t2 = performance.now();
    const cpuMicrosPerTask: FusedRunResult['cpuMicrosPerTask'] = cpu.perItem(n);
    const [ticks1, lsn1] = await Promise.all([backendTicks(admin, app), lsn()]);
    if (ticks1.size > 0) {
      let ticks = 0;
      for (const [pid, t] of ticks1) ticks += t - (ticks0.get(pid) ?? 0);
      cpuMicrosPerTask.ownBackends = Math.round((ticks * 1e5) / n) / 10;
    }
    if (barrier.applied !== n || !barrier.completedStage)
      throw new Error(
        `${name}: the barrier applied ${barrier.applied} of ${n} tasks, stage completed: ${barrier.completedStage}`,
      );

    const [{ wal }] = (
      await admin.query<{ wal: string }>('SELECT pg_wal_lsn_diff($2, $1) AS wal', [lsn0, lsn1])
    ).rows as [{ wal: string }];
    await close();
    const run = await tupleStats(admin, schema, (1 + design.rowWrites) * n);
    const [{ table_kb: tableKb, indexes_kb: indexesKb }] = (
      await admin.query<{ table_kb: number; indexes_kb: number }>(
        `SELECT pg_table_size($1::regclass) / 1024 AS table_kb, pg_indexes_size($1::regclass) / 1024 AS indexes_kb`,
        [`${s}.tasks`],
      )
    ).rows as [{ table_kb: number; indexes_kb: number }];
    const probe = await hotProbe(admin, schema, design, run);

    return {
      tasksPerSecond: n / ((t2 - t0) / 1000),
      insertSeconds: Math.round(t1 - t0) / 1000,
      drainSeconds: Math.round(t2 - t1) / 1000,
      cpuMicrosPerTask,
      walBytesPerTask: Math.round(Number(wal) / n),
      hot: { run: share(run.hot, run.updates), ...probe },
      tableKb: Number(tableKb),
      indexesKb: Number(indexesKb),
      claims,
    };
  } finally {
    await close();
    await dropSchema(admin, schema);
  }
}

/** The 1-, 5- and 15-minute load averages, two decimals. */
const load = () => loadavg().map((l) => Math.round(l * 100) / 100);

/**
 * The runs of the part: every design on the store's fillfactor (40); those whose two updates both
 * need a row's page to hold its next version also on 25 (room for three versions of a row, so
 * both can be HOT without pruning); (d) on 100 (no room).
 */
const RUNS: { design: ClaimDesignName; fillfactor: number }[] = [
  ...(['status', 'lease', 'due-cleared', 'pk-cursor', 'stage-range'] as const).map((design) => ({
    design,
    fillfactor: 40,
  })),
  { design: 'due-cleared', fillfactor: 25 },
  { design: 'pk-cursor', fillfactor: 25 },
  { design: 'pk-cursor-ctid', fillfactor: 25 },
  { design: 'pk-cursor', fillfactor: 100 },
];

/** `items` in a random order (Fisher–Yates). */
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * `--part fused-floor`: graphile-worker (10,000 jobs) before and after, the statement floor, and
 * each claim design's run, in one process; ratios are to the mean of the two graphile-worker runs
 * and to the floor.
 * @param options.n task rows per run (default 100,000).
 * @param options.claimers concurrent claim loops (default 8).
 * @param options.batch most rows per claim (default 500).
 */
export async function fusedFloorPart(
  admin: pg.Pool,
  options: { n?: number; claimers?: number; batch?: number } = {},
): Promise<Record<string, unknown>> {
  const n = options.n ?? 100_000;
  const claimers = options.claimers ?? 8;
  const batch = options.batch ?? 500;
  const cpuNote = (cpu: { node: number; postgres?: number }) =>
    `${cpu.node} µs Node + ${cpu.postgres ?? '?'} µs PostgreSQL`;
  const graphileRun = async () => {
    const g = { ...(await graphileWorker(admin, 10_000)), load: load() };
    log(
      `  graphile-worker: 10000 no-op jobs → ${g.jobsPerSecond.toFixed(0)} jobs/s; CPU per job ${cpuNote(g.cpuMicrosPerJob)}; load ${g.load.join(' ')}`,
    );
    return g;
  };
  const graphileBefore = await graphileRun();
  const floor = { ...(await statementFloor(admin, n, 64)), load: load() };
  log(
    `  statement floor: ${n} tasks → ${floor.tasksPerSecond.toFixed(0)} tasks/s; CPU per task ${cpuNote(floor.cpuMicrosPerTask)}; load ${floor.load.join(' ')}`,
  );
  const runs: (FusedRunResult & { design: ClaimDesignName; fillfactor: number; load: number[] })[] =
    [];
  // In a random order, so that a drift of the machine's load favours no design in particular.
  for (const { design, fillfactor } of shuffled(RUNS)) {
    const r = await fusedRun(admin, design, { n, claimers, batch, fillfactor });
    runs.push({ design, fillfactor, ...r, load: load() });
    log(
      `  fused ${design}, fillfactor ${fillfactor}: ${r.tasksPerSecond.toFixed(0)} tasks/s (insert ${r.insertSeconds} s, claims + barrier ${r.drainSeconds} s); CPU per task ${cpuNote(r.cpuMicrosPerTask)} (own backends ${r.cpuMicrosPerTask.ownBackends ?? '?'} µs); WAL ${r.walBytesPerTask} B per task; HOT share: run ${r.hot.run}, claim ${r.hot.claim}, barrier ${r.hot.barrier}; tasks ${r.tableKb} kB + indexes ${r.indexesKb} kB; load ${runs.at(-1)!.load.join(' ')}`,
    );
  }
  const graphileAfter = await graphileRun();
  const graphile = (graphileBefore.jobsPerSecond + graphileAfter.jobsPerSecond) / 2;
  const ratio = (x: number, y: number) => Math.round((x / y) * 100) / 100;
  for (const r of runs)
    log(
      `  ${r.design}, fillfactor ${r.fillfactor}: ${ratio(r.tasksPerSecond, graphile)}x graphile-worker, ${ratio(r.tasksPerSecond, floor.tasksPerSecond)}x the statement floor`,
    );
  return {
    scenario: 'postgres',
    part: 'fused-floor',
    n,
    claimers,
    batch,
    graphileWorker: [graphileBefore, graphileAfter].map((g) => ({
      ...g,
      jobsPerSecond: Math.round(g.jobsPerSecond),
    })),
    floor: { ...floor, tasksPerSecond: Math.round(floor.tasksPerSecond) },
    fused: runs.map((r) => ({
      ...r,
      summary: CLAIM_DESIGNS[r.design].summary,
      tasksPerSecond: Math.round(r.tasksPerSecond),
      toGraphileWorker: ratio(r.tasksPerSecond, graphile),
      toFloor: ratio(r.tasksPerSecond, floor.tasksPerSecond),
    })),
  };
}
