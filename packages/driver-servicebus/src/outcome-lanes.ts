/**
 * Serialises message dispositions by outcome.
 *
 * rhea (under `@azure/service-bus`) merges the dispositions of adjacent deliveries settled in the
 * same tick into one frame that carries the *first* outcome: `Promise.all([complete(a),
 * abandon(b)])` completes both, and `b` is lost. So only dispositions with an identical outcome may
 * be in flight together; a group of one outcome is awaited (the SDK resolves once the service
 * settled it back) before the next outcome starts. Concurrent `settle` calls share one lane, so
 * two workers settling at once cannot interleave either, and same-outcome settlements from many
 * callers coalesce into one flight.
 * @module
 */

interface Job {
  key: string;
  run: () => Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** One process-wide lane per transport: at any moment only one outcome key is in flight. */
export class OutcomeLanes {
  /**
   * @param timeoutMs a disposition not settled back by then fails (its message comes back when
   *   its lock expires) so one hung disposition — e.g. on a link the SDK closed — cannot stall
   *   every later settlement.
   */
  constructor(private readonly timeoutMs = 30_000) {}

  private queue: Job[] = [];
  private pumping = false;
  /** Groups flushed so far (diagnostics and tests). */
  groupsRun = 0;

  /** Runs `run` once every in-flight disposition with a different `key` has settled. */
  submit(key: string, run: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ key, run, resolve, reject });
      if (!this.pumping) void this.pump();
    });
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const key = this.queue[0]!.key;
        const group: Job[] = [];
        const rest: Job[] = [];
        for (const job of this.queue) (job.key === key ? group : rest).push(job);
        this.queue = rest;
        this.groupsRun++;
        await Promise.all(
          group.map(async (job) => {
            try {
              await withTimeout(job.run(), this.timeoutMs);
              job.resolve();
            } catch (err) {
              job.reject(err);
            }
          }),
        );
      }
    } finally {
      this.pumping = false;
    }
  }
}

/** Raised when a disposition was not settled back in time. */
export class SettlementTimeoutError extends Error {
  constructor(ms: number) {
    super(`disposition not settled back within ${ms} ms`);
    this.name = 'SettlementTimeoutError';
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SettlementTimeoutError(ms)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
