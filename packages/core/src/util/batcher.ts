/**
 * Coalesces concurrent calls into batched calls — group commit. Items added while a batch is in
 * flight wait for it and go out together in the next one, so the batch size adapts to the load:
 * one item when idle, hundreds when a slow round trip (a barrier statement on a hot stage row) is
 * the bottleneck. Used for the store's claim and completion round trips and for settlements,
 * whether the concurrent callers are `work()` handlers or concurrent serverless invocations.
 */
export class Batcher<T, R> {
  private pending: { item: T; sink: Sink<R>; index: number }[] = [];
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
      this.pending.push({ item, sink: new OneSink(resolve, reject), index: 0 });
      this.schedule();
    });
  }

  /**
   * Adds several items under one promise, resolved with their results in order (one promise for a
   * pack of tasks instead of one per task). They may go out in more than one batch.
   */
  addMany(items: readonly T[]): Promise<R[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise<R[]>((resolve, reject) => {
      const sink = new ManySink(items.length, resolve, reject);
      for (let index = 0; index < items.length; index++)
        this.pending.push({ item: items[index]!, sink, index });
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
          for (let i = 0; i < batch.length; i++) {
            const { sink, index } = batch[i]!;
            sink.resolveOne(index, results[i] as R);
          }
        },
        (err: unknown) => {
          for (const p of batch) p.sink.reject(err);
        },
      )
      .finally(() => {
        this.inFlight--;
        this.schedule();
      });
    this.schedule();
  }
}

/** Where an add's results go. */
interface Sink<R> {
  resolveOne(index: number, result: R): void;
  reject(err: unknown): void;
}

class OneSink<R> implements Sink<R> {
  constructor(
    private readonly resolve: (result: R) => void,
    readonly reject: (err: unknown) => void,
  ) {}

  resolveOne(_index: number, result: R): void {
    this.resolve(result);
  }
}

/** Settled once: when the last of its items has a result, or when any of them fails. */
class ManySink<R> implements Sink<R> {
  private readonly results: R[];
  private left: number;
  private settled = false;

  constructor(
    size: number,
    private readonly resolve: (results: R[]) => void,
    private readonly rejectWith: (err: unknown) => void,
  ) {
    this.results = new Array<R>(size);
    this.left = size;
  }

  resolveOne(index: number, result: R): void {
    this.results[index] = result;
    if (--this.left === 0 && !this.settled) {
      this.settled = true;
      this.resolve(this.results);
    }
  }

  reject(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.rejectWith(err);
  }
}
