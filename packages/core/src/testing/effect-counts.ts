import type { Store } from '../store.js';

/** The effects a {@link countEffects} store saw committed. */
export interface EffectCounts {
  /** Task ids whose outcome a `completeTasks` call applied, with how many times each. */
  readonly applied: ReadonlyMap<string, number>;
  /** Stage indexes a `startStage` call advanced the job to, with how many times each. */
  readonly advanced: ReadonlyMap<number, number>;
  /** `finishJob` calls that finished a job. */
  readonly finished: number;
}

/**
 * Wraps a store to count the effects that committed: each task outcome applied, each stage
 * advanced to, each job finished. Put it under {@link faultyStore}, so that a crash after a commit
 * still counts and one before it does not: "exactly once" is then each count being 1.
 */
export function countEffects(inner: Store): { store: Store; counts: EffectCounts } {
  const applied = new Map<string, number>();
  const advanced = new Map<number, number>();
  let finished = 0;
  const store: Store = Object.create(inner) as Store;
  store.completeTasks = async (outcomes) => {
    const r = await inner.completeTasks(outcomes);
    for (const id of r.applied) applied.set(id, (applied.get(id) ?? 0) + 1);
    return r;
  };
  store.startStage = async (jobId, index, name) => {
    const r = await inner.startStage(jobId, index, name);
    if (r.advanced) advanced.set(index, (advanced.get(index) ?? 0) + 1);
    return r;
  };
  store.finishJob = async (jobId, outcome) => {
    const done = await inner.finishJob(jobId, outcome);
    if (done) finished++;
    return done;
  };
  return {
    store,
    counts: {
      applied,
      advanced,
      get finished() {
        return finished;
      },
    },
  };
}

/** What a finished job must show for {@link exactlyOnceViolations} to find nothing. */
export interface ExactlyOnceExpectation {
  /** The store under the crashing layer: the committed truth. */
  readonly store: Store;
  /** The counts of the {@link countEffects} wrapper over that store. */
  readonly counts: EffectCounts;
  readonly jobId: string;
  /** Each stage's task results in index order, as a crash-free, duplicate-free run produces them. */
  readonly perStage: readonly (readonly unknown[])[];
  /** The job's result, as `finalize` returns it. */
  readonly result: unknown;
  /** Streams a stage's results as a later stage would read them (`switchyard.results`). */
  results(stage: number): AsyncIterable<{ result: unknown }>;
}

/**
 * Checks that a succeeded job's effects each happened exactly once: its result, each stage
 * advanced once with exact counts and results, each task's outcome applied once, the job finished
 * once. Returns the violations, one line each; none means the run kept the guarantee.
 */
export async function exactlyOnceViolations(expect: ExactlyOnceExpectation): Promise<string[]> {
  const { store, counts, jobId, perStage } = expect;
  const violations: string[] = [];
  const view = await store.getJob(jobId);
  if (JSON.stringify(view?.result) !== JSON.stringify(expect.result))
    violations.push(`result ${JSON.stringify(view?.result)} != ${JSON.stringify(expect.result)}`);
  if (counts.finished !== 1) violations.push(`job finished ${counts.finished} times`);
  const records = await store.getStages(jobId);
  for (const [s, want] of perStage.entries()) {
    if (counts.advanced.get(s) !== 1)
      violations.push(`stage ${s} advanced ${counts.advanced.get(s) ?? 0} times`);
    const rec = records[s];
    if (rec?.total !== want.length || rec.succeeded !== want.length || rec.failed !== 0)
      violations.push(`stage ${s} counts ${JSON.stringify(rec)} != ${want.length} succeeded`);
    const got: unknown[] = [];
    for await (const r of expect.results(s)) got.push(r.result);
    if (JSON.stringify(got) !== JSON.stringify(want))
      violations.push(`stage ${s} results ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
  }
  const tasks = perStage.reduce((n, p) => n + p.length, 0);
  const twice = [...counts.applied].filter(([, k]) => k !== 1);
  if (counts.applied.size !== tasks || twice.length > 0)
    violations.push(
      `outcomes applied for ${counts.applied.size} of ${tasks} tasks; more than once: ${JSON.stringify(twice)}`,
    );
  return violations;
}
