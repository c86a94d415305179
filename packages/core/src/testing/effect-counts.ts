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
