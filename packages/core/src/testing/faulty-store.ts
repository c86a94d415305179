import type { Store } from '../store.js';

/** Store methods that change state: where a crash can strike. */
export type MutatingStoreMethod =
  | 'createJob'
  | 'startStage'
  | 'insertTasks'
  | 'sealStage'
  | 'claimTasks'
  | 'admitPacks'
  | 'completeTasks'
  | 'retryTasks'
  | 'finishJob';

export interface StoreFaults {
  /**
   * Probability that a mutating call "crashes": it throws, either before touching the store or —
   * half the time — after its change was committed (the caller never learns it succeeded).
   */
  crash?: number;
  /** Only these methods crash. @defaultValue all mutating methods */
  methods?: MutatingStoreMethod[];
  /** Decides per call whether to crash after the change commits (deterministic tests). */
  crashAfter?: (method: MutatingStoreMethod, args: unknown[]) => boolean;
  random?: () => number;
}

export interface FaultyStore extends Store {
  readonly crashes: number;
}

const MUTATING: MutatingStoreMethod[] = [
  'createJob',
  'startStage',
  'insertTasks',
  'sealStage',
  'claimTasks',
  'admitPacks',
  'completeTasks',
  'retryTasks',
  'finishJob',
];

/**
 * Wraps a store so that mutating calls crash at random — before or after their change commits —
 * simulating a worker that dies between any two steps. The engine must keep every invariant.
 */
export function faultyStore(inner: Store, faults: StoreFaults = {}): FaultyStore {
  const random = faults.random ?? Math.random;
  const methods = new Set(faults.methods ?? MUTATING);
  let crashes = 0;
  const crash = (method: string): never => {
    crashes++;
    throw new Error(`injected crash in ${method}`);
  };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'crashes') return crashes;
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const method = prop as MutatingStoreMethod;
      if (!methods.has(method)) return (value as (...a: unknown[]) => unknown).bind(target);
      return async (...args: unknown[]) => {
        const fn = value as (...a: unknown[]) => Promise<unknown>;
        const roll = faults.crash ? random() : 1;
        if (roll < (faults.crash ?? 0) / 2) crash(method);
        const result = await fn.apply(target, args);
        if (roll < (faults.crash ?? 0) || faults.crashAfter?.(method, args)) crash(method);
        return result;
      };
    },
  }) as FaultyStore;
}
