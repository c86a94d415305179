/**
 * The engine's invariants on the fused path (task rows claimed in place), under faults, on PGlite
 * and the server: random two- and three-stage jobs with transient failures, run by two
 * Switchyards whose store writes crash at random (before or after they commit), whose settlements
 * are lost at random (a worker that died after running its range: the lease comes back), and whose
 * offers, retries and dead letters of task rows crash at random, before or after they are made.
 * Each job must end succeeded with exact results, each stage advanced once, each task's outcome
 * recorded once, the job finished once, and nothing left behind — no lease, offer or message.
 *
 * PGlite is one session in one process, so its kill campaign is this one: the crashes are the
 * faults, injected between (never inside) the driver's statements. ROW_FAULT_CASES and
 * ROW_FAULT_SEED reproduce or extend a run.
 */
import { createSwitchyard, silentLogger } from '@switchyard/core';
import {
  chainJob,
  countEffects,
  exactlyOnceViolations,
  faultyStore,
  faultyTransport,
  seededRandom,
} from '@switchyard/core/testing';
import { describe, expect, it } from 'vitest';
import { postgresStore, postgresTransport } from '../src/index.js';
import { type Engine, engines } from './helpers.js';

const CASES = Number(process.env.ROW_FAULT_CASES ?? 5);
const SEED = Number(process.env.ROW_FAULT_SEED ?? Date.now() % 1_000_000);
/** How long a claimed range stays locked: a lost settlement's range comes back after this. */
const LOCK_MS = 300;

/** What a case injected: store writes crashed, settlements lost, row-claim calls crashed. */
interface Injected {
  storeCrashes: number;
  lostSettlements: number;
  rowClaimCrashes: number;
}

async function runCase(engine: Engine, seed: number, injected: Injected): Promise<string[]> {
  const random = seededRandom(seed);
  const width = 20 + Math.floor(random() * 60);
  const stages = 2 + Math.floor(random() * 2);
  const schema = engine.schema();
  const inner = postgresStore({ ...engine.connection(), schema });
  await inner.init();
  // Counts committed effects only: it sits under the crashing layer.
  const { store: counting, counts } = countEffects(inner);
  const store = faultyStore(counting, { crash: 0.03, random });
  const base = postgresTransport({ ...engine.connection(), schema, pollIntervalMs: 50 });
  const transport = faultyTransport(base, { dropSettlement: 0.05, failRowClaims: 0.1, random });

  // One in four tasks fails its first one or two attempts (by its value, so retries agree). Half
  // the jobs have no finalize: they finish where their last stage completes.
  const { job, expected } = chainJob({
    name: 'faults',
    width,
    stages,
    finalize: random() < 0.5,
    fails: ({ v, s }, attempt) => attempt <= ((v * 7 + s * 13) % 4 === 0 ? 1 + ((v + s) % 2) : 0),
  });
  const options = {
    jobs: [job],
    store,
    transports: [transport],
    logger: silentLogger,
    // A range whose processing crashed comes back after this backoff too: kept short, so that the
    // ranges of a finished job drain within the check below.
    retry: { maxAttempts: 20, initialDelayMs: 5, maxDelayMs: 40 },
    batching: { chunkSize: 8 + Math.floor(random() * 24), packTasks: 2 + Math.floor(random() * 6) },
    // A fault can lose an offer or a stage hand-off for good: the reconciler finds them.
    reconcile: { intervalMs: 200, olderThanMs: 1000 },
  } as const;
  const yards = [createSwitchyard(options), createSwitchyard(options)];
  const stop = new AbortController();
  const working = yards.map((y) =>
    y.work({ concurrency: 8, signal: stop.signal, visibilityTimeoutMs: LOCK_MS, waitMs: 50 }),
  );
  const violations: string[] = [];
  try {
    let jobId: string | undefined;
    for (let i = 0; i < 50 && !jobId; i++)
      jobId = (await yards[0]!.submit('faults', undefined).catch(() => undefined))?.jobId;
    if (!jobId) return ['submit never succeeded'];
    // Past the bound, the job as the store holds it.
    const view = await yards[0]!
      .waitFor(jobId, { pollIntervalMs: 50, signal: AbortSignal.timeout(60_000) })
      .catch(() => inner.getJob(jobId));
    if (view?.status !== 'succeeded')
      return [`job ended ${view?.status ?? 'missing'}: ${JSON.stringify(view?.error)}`];
    violations.push(
      ...(await exactlyOnceViolations({
        store: inner,
        counts,
        jobId,
        perStage: expected.perStage,
        result: expected.result,
        results: (s) => yards[0]!.results(jobId, s),
      })),
    );
    // Nothing left behind once lost settlements' leases have come back and been settled.
    const left = async () =>
      (
        await engine.query<{ what: string }>(
          `SELECT 'lease ' || row_to_json(l)::text AS what FROM "${schema}".task_leases l
           UNION ALL SELECT 'offer ' || row_to_json(o)::text FROM "${schema}".task_offers o
            WHERE claimed < upto
           UNION ALL SELECT 'message ' || queue || ' ' || body FROM "${schema}".queue_messages
           UNION ALL SELECT 'dead letter ' || queue || ' ' || reason || ' ' || body
             FROM "${schema}".queue_dead_letters`,
        )
      ).map((r) => r.what);
    const drainBy = Date.now() + 15_000;
    while ((await left()).length > 0 && Date.now() < drainBy)
      await new Promise((r) => setTimeout(r, 50));
    for (const what of await left()) violations.push(`left behind: ${what}`);
    const ops = base.usage().operations;
    if (!ops.offer || !ops.claim) violations.push('the task rows were not claimed in place');
    if (!ops.retryRows) violations.push('no failed attempt was made due again in its row');
    return violations;
  } finally {
    stop.abort();
    await Promise.all(working);
    for (const y of yards) await y.close();
    injected.storeCrashes += store.crashes;
    injected.lostSettlements += transport.stats.droppedSettlements;
    injected.rowClaimCrashes += transport.stats.failedRowClaims;
  }
}

for (const engine of await engines()) {
  describe(`task-row claims under faults (${engine.name})`, () => {
    it(`${CASES} random jobs keep every invariant (seed ${SEED})`, {
      timeout: CASES * 90_000,
    }, async () => {
      const failures: string[] = [];
      const injected: Injected = { storeCrashes: 0, lostSettlements: 0, rowClaimCrashes: 0 };
      for (let i = 0; i < CASES; i++) {
        const seed = SEED + i;
        const violations = await runCase(engine, seed, injected);
        if (violations.length > 0) failures.push(`seed ${seed}: ${violations.join('; ')}`);
      }
      console.log(
        `[row-claims faults ${engine.name}] ${CASES} jobs, seed ${SEED}: ${JSON.stringify(injected)}`,
      );
      expect(failures).toEqual([]);
      // The faults were injected: a run without them would prove nothing.
      expect(injected.storeCrashes).toBeGreaterThan(0);
      expect(injected.lostSettlements).toBeGreaterThan(0);
      expect(injected.rowClaimCrashes).toBeGreaterThan(0);
    });
  });
}
