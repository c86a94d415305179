/**
 * Coalesces concurrent calls into batched calls — group commit. Items added while a batch is in
 * flight wait for it and go out together in the next one, so the batch size adapts to the load:
 * one item when idle, hundreds when a slow round trip (a barrier statement on a hot stage row) is
 * the bottleneck. Used for the store's claim and completion round trips and for settlements,
 * whether the concurrent callers are `work()` handlers or concurrent serverless invocations.
 */
export class Batcher<T, R> {
  private pending: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;
  private inFlight = 0;

  constructor(
    private readonly run: (items: T[]) => Promise<R[]>,
    private readonly maxSize: number,
    /** Batches in flight at once; more items wait for one to finish. */
    private readonly maxInFlight = 1,
  ) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.pending.length === 0 || this.inFlight >= this.maxInFlight) return;
    this.scheduled = true;
    // Let the current tick's callers join before the batch leaves.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.pending.length === 0 || this.inFlight >= this.maxInFlight) return;
    const batch = this.pending.splice(0, this.maxSize);
    this.inFlight++;
    this.run(batch.map((p) => p.item))
      .then(
        (results) => {
          for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i] as R);
        },
        (err: unknown) => {
          for (const p of batch) p.reject(err);
        },
      )
      .finally(() => {
        this.inFlight--;
        this.schedule();
      });
    this.schedule();
  }
}
