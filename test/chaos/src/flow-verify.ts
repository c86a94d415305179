/**
 * The flow-control checks, from the handler runs the chaos tasks recorded (`chaos_runs`: key,
 * start, end), the admissions the workers' stores recorded (`chaos_admissions`) and the store's
 * own flow tables.
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { ChaosFlow } from './job.js';

export interface FlowVerdict {
  violations: string[];
  /** Flow-limited handler runs checked. */
  runs: number;
  /** Runs whose worker died before they ended (their key slot held until the kill). */
  cutByKill: number;
  /** Most runs of one key seen at once. */
  maxConcurrent: number;
  /** Rate-limited admissions checked. */
  admissions: number;
  /** Smallest gap between a key's start and its `limit`-th next start, ms (rate limit only). */
  minStartGapMs: number | null;
}

export interface FlowCheck {
  flow: ChaosFlow;
  /** When each killed worker was seen dead, by worker name. */
  deaths: ReadonlyMap<string, number>;
  /**
   * Slack for the handler-start windows, ms: a handler starts a claim's round trip after its
   * admission. (The admissions themselves are checked without slack.)
   */
  startSlackMs?: number;
}

/**
 * Checks the runs of `jobIds`: never more than `keyLimit` runs of one key at once (a run cut by a
 * kill counts until its worker was seen dead: its slot was held until then at least), and, with
 * a rate limit, never more than `limit` admissions of one key within any `periodMs` (an admission
 * is known to lie between its ask and its answer) and handler starts spaced likewise, up to the
 * slack.
 */
export async function verifyFlow(
  pool: pg.Pool,
  schema: string,
  jobIds: readonly string[],
  check: FlowCheck,
): Promise<FlowVerdict> {
  const { flow } = check;
  const violations: string[] = [];
  const { rows } = await pool.query<{
    task_id: string;
    key: string;
    worker: string;
    started_at: string;
    ended_at: string | null;
  }>(
    `SELECT task_id, key, worker, started_at, ended_at FROM "${schema}".chaos_runs
      WHERE job_id = ANY($1::text[]) AND key IS NOT NULL`,
    [jobIds],
  );
  let cutByKill = 0;
  const byKey = new Map<string, { start: number; end: number; task: string }[]>();
  for (const r of rows) {
    let end = r.ended_at === null ? undefined : Number(r.ended_at);
    if (end === undefined) {
      end = check.deaths.get(r.worker);
      if (end === undefined) {
        violations.push(
          `${r.task_id}: a run on ${r.worker} never ended and its worker was not killed`,
        );
        continue;
      }
      cutByKill++;
    }
    const list = byKey.get(r.key) ?? [];
    list.push({ start: Number(r.started_at), end, task: r.task_id });
    byKey.set(r.key, list);
  }
  let maxConcurrent = 0;
  if (flow.keyLimit !== undefined) {
    for (const [key, runs] of byKey) {
      const most = maxOverlap(runs);
      maxConcurrent = Math.max(maxConcurrent, most.count);
      if (most.count > flow.keyLimit)
        violations.push(
          `key ${key}: ${most.count} runs at once (limit ${flow.keyLimit}) at ${most.at}: ${most.tasks.join(', ')}`,
        );
    }
  }
  let admissions = 0;
  let minStartGapMs: number | null = null;
  if (flow.rate) {
    const { limit, periodMs } = flow.rate;
    const admitted = await pool.query<{ key: string; asked_at: string; answered_at: string }>(
      `SELECT key, asked_at, answered_at FROM "${schema}".chaos_admissions
        WHERE job_id = ANY($1::text[])`,
      [jobIds],
    );
    admissions = admitted.rows.length;
    const perKey = group(
      admitted.rows,
      (r) => r.key,
      (r) => ({ asked: Number(r.asked_at), answered: Number(r.answered_at) }),
    );
    for (const [key, list] of perKey) {
      // Admissions known to lie within [asked_j, asked_j + periodMs): at most `limit` of them.
      for (const a of list) {
        const inside = list.filter(
          (b) => b.asked >= a.asked && b.answered < a.asked + periodMs,
        ).length;
        if (inside > limit)
          violations.push(
            `key ${key}: ${inside} admissions within ${periodMs} ms (limit ${limit})`,
          );
      }
    }
    for (const [key, runs] of byKey) {
      if (!key.startsWith('square/')) continue;
      const starts = runs.map((r) => r.start).sort((a, b) => a - b);
      for (let i = limit; i < starts.length; i++) {
        const gap = starts[i]! - starts[i - limit]!;
        minStartGapMs = minStartGapMs === null ? gap : Math.min(minStartGapMs, gap);
        if (gap < periodMs - (check.startSlackMs ?? 250))
          violations.push(
            `key ${key}: starts ${i - limit} and ${i} only ${gap} ms apart (limit ${limit} per ${periodMs} ms)`,
          );
      }
    }
  }
  return { violations, runs: rows.length, cutByKill, maxConcurrent, admissions, minStartGapMs };
}

/**
 * After a run, once every killed worker's lease has run out: no key slot is held (nothing runs
 * any more) and no task is marked waiting.
 */
export async function verifyNoSlotHeld(
  pool: pg.Pool,
  schema: string,
  options: { lastDeath: number | undefined; leaseMs: number },
): Promise<string[]> {
  // Live workers release at the end of each handler; only the dead ones' leases have to run out.
  const until = (options.lastDeath ?? 0) + options.leaseMs + 500;
  if (Date.now() < until) await sleep(until - Date.now());
  const violations: string[] = [];
  const held = await pool.query<{ scope: string; key: string; holder: string; left_ms: string }>(
    `SELECT scope, key, holder,
            (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint AS left_ms
       FROM "${schema}".flow_slots WHERE expires_at > clock_timestamp()`,
  );
  for (const h of held.rows)
    violations.push(
      `key slot ${h.scope}/${h.key} still held by ${h.holder} (${h.left_ms} ms left) after the run and every lease bound`,
    );
  const waiting = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM "${schema}".tasks WHERE waiting IS NOT NULL AND status IN ('pending', 'running')`,
  );
  if (Number(waiting.rows[0]?.n) > 0)
    violations.push(`${waiting.rows[0]?.n} task(s) still marked waiting after the run`);
  return violations;
}

/** Most intervals open at once, and where (an end before a start at the same instant). */
function maxOverlap(runs: readonly { start: number; end: number; task: string }[]) {
  const edges = runs
    .flatMap((r) => [
      { at: r.start, d: 1, task: r.task },
      { at: r.end, d: -1, task: r.task },
    ])
    .sort((a, b) => a.at - b.at || a.d - b.d);
  const open = new Set<string>();
  let best = { count: 0, at: 0, tasks: [] as string[] };
  let count = 0;
  for (const e of edges) {
    count += e.d;
    if (e.d > 0) open.add(e.task);
    else open.delete(e.task);
    if (count > best.count) best = { count, at: e.at, tasks: [...open] };
  }
  return best;
}

function group<R, V>(rows: readonly R[], keyOf: (r: R) => string, value: (r: R) => V) {
  const map = new Map<string, V[]>();
  for (const r of rows) {
    const list = map.get(keyOf(r)) ?? [];
    list.push(value(r));
    map.set(keyOf(r), list);
  }
  return map;
}
