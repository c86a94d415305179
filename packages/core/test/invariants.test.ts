/**
 * Property-style test of the engine invariants (DESIGN "The engine" 1–5): random multi-stage jobs
 * run by two workers through a transport that duplicates, delays, reorders and loses settlements,
 * over a store whose writes crash at random — before or after they commit. Thousands of cases per
 * run; PROPERTY_CASES and PROPERTY_SEED reproduce or extend a run.
 */
import { createSwitchyard, memoryStore, memoryTransport, silentLogger } from '@switchyard/core';
import {
  chainJob,
  countEffects,
  exactlyOnceViolations,
  faultyStore,
  faultyTransport,
  seededRandom,
} from '@switchyard/core/testing';
import { describe, expect, it } from 'vitest';

const CASES = Number(process.env.PROPERTY_CASES ?? 1000);
const PARALLEL = 50;
const SEED = Number(process.env.PROPERTY_SEED ?? Date.now() % 1_000_000);

interface Case {
  seed: number;
  /** Tasks of the first stage; later stages fan out one task per earlier result. */
  width: number;
  stages: number;
  /** Transient failures before success, per (stage, value) — derived from the seed. */
  flakiness: number;
  /** Without finalize, the job finishes where its last stage completes. */
  finalize: boolean;
}

function generate(random: () => number, seed: number): Case {
  return {
    seed,
    width: Math.floor(random() * 16),
    stages: 1 + Math.floor(random() * 3),
    flakiness: random(),
    finalize: random() < 0.5,
  };
}

async function runCase(c: Case): Promise<string[]> {
  const random = seededRandom(c.seed);
  const inner = memoryStore();
  // Counts committed effects only: it sits under the crashing layer.
  const { store: counting, counts } = countEffects(inner);
  const store = faultyStore(counting, { crash: 0.04, random });
  const baseTransport = memoryTransport({ visibilityTimeoutMs: 40 });
  const transport = faultyTransport(baseTransport, {
    duplicate: 0.5,
    maxDelayMs: 8,
    dropSettlement: 0.1,
    random,
  });

  // Failures are counted per (stage, value), not by attempt: a crash may use up an attempt that
  // never ran the handler.
  const failuresLeft = new Map<string, number>();
  const { job, expected } = chainJob({
    name: 'random',
    width: c.width,
    stages: c.stages,
    finalize: c.finalize,
    fails: ({ v, s }) => {
      const key = `${s}:${v}`;
      const left = failuresLeft.get(key) ?? (((v * 7 + s * 13) % 10) / 10 < c.flakiness ? 2 : 0);
      failuresLeft.set(key, Math.max(0, left - 1));
      return left > 0;
    },
  });
  const options = {
    jobs: [job],
    store,
    transports: [transport],
    logger: silentLogger,
    retry: { maxAttempts: 50, initialDelayMs: 2, maxDelayMs: 20 },
    batching: {
      chunkSize: 1 + Math.floor(random() * 5),
      maxMessages: 1 + Math.floor(random() * 4),
      // Half the jobs pack their task messages (2–4 tasks per message).
      packTasks: random() < 0.5 ? 1 : 2 + Math.floor(random() * 3),
    },
    reconcile: { intervalMs: 0 },
  } as const;
  const yards = [createSwitchyard(options), createSwitchyard(options)];
  const stop = new AbortController();
  const working = yards.map((y) =>
    y.work({ concurrency: 4, signal: stop.signal, visibilityTimeoutMs: 40, waitMs: 10 }),
  );
  const violations: string[] = [];
  try {
    let jobId: string | undefined;
    for (let i = 0; i < 50 && !jobId; i++)
      jobId = (await yards[0]!.submit('random', undefined).catch(() => undefined))?.jobId;
    if (!jobId) return ['submit never succeeded'];
    // Past the bound, the job as the store holds it.
    const view = await yards[0]!
      .waitFor(jobId, { pollIntervalMs: 10, signal: AbortSignal.timeout(20_000) })
      .catch(() => inner.getJob(jobId));
    if (view?.status !== 'succeeded')
      return [`job ended ${view?.status}: ${JSON.stringify(view?.error)}`];
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
    // Nothing left behind: duplicates and delayed copies drain and are acknowledged. The bound is
    // generous (the loop ends as soon as the queues are empty): 50 cases run at once, and on a
    // loaded machine their redeliveries take seconds to come round.
    const drainBy = Date.now() + 15_000;
    const depth = () => baseTransport as unknown as { depth(q: string): number };
    while ((depth().depth('task') > 0 || depth().depth('stage') > 0) && Date.now() < drainBy)
      await new Promise((r) => setTimeout(r, 20));
    if (depth().depth('task') + depth().depth('stage') > 0)
      violations.push(
        `messages left: ${depth().depth('stage')} stage, ${depth().depth('task')} task`,
      );
    if (
      (await baseTransport.listDeadLetters!('task')).length +
        (await baseTransport.listDeadLetters!('stage')).length >
      0
    )
      violations.push('unexpected dead letters');
    return violations;
  } finally {
    stop.abort();
    await Promise.all(working);
  }
}

describe('engine invariants under duplicates, delays, reordering and crashes', () => {
  it(`holds for ${CASES} random jobs (seed ${SEED})`, { timeout: 600_000 }, async () => {
    const random = seededRandom(SEED);
    const cases = Array.from({ length: CASES }, (_, i) => generate(random, SEED * 10_000 + i));
    const failures: { c: Case; violations: string[] }[] = [];
    for (let i = 0; i < cases.length; i += PARALLEL) {
      const batch = cases.slice(i, i + PARALLEL);
      const results = await Promise.all(
        batch.map((c) => runCase(c).then((violations) => ({ c, violations }))),
      );
      failures.push(...results.filter((r) => r.violations.length > 0));
      if (failures.length > 0) break;
    }
    expect(failures.slice(0, 3)).toEqual([]);
  });
});
