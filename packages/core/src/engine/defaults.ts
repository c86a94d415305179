/**
 * Every engine default, in one place. Options are checked and defaults applied by
 * `resolveOptions` / `resolveWorkOptions` (options.ts); no other module holds a default.
 */
import type { RetryPolicy } from '../define.js';
import { DEFAULT_CANCEL_CHECK_MS } from '../operations/cancel-watch.js';

/** A group-commit batcher's shape: items per round trip and round trips in flight at once. */
export interface BatcherSize {
  maxBatch: number;
  inFlight: number;
}

export const DEFAULTS = {
  retry: {
    maxAttempts: 3,
    initialDelayMs: 1000,
    factor: 2,
    maxDelayMs: 60_000,
    jitter: 0.5,
  } satisfies Required<RetryPolicy>,
  reconcile: {
    /** Work untouched for this long counts as stuck. */
    olderThanMs: 300_000,
    /** Most items re-driven per pass. */
    limit: 1000,
    /** How often `work()` runs a pass; 0 disables it. */
    intervalMs: 60_000,
    /** The reconciler lease lasts at least this long, whatever `olderThanMs` is. */
    minLeaseMs: 30_000,
  },
  /**
   * Retention: deleting finished jobs from the reconciler's pass. Off unless `retention` names a
   * status — finished jobs are kept for ever by default, because deleting them deletes what
   * callers may still read (`getJob`, `results`) and the history an audit may need, and no age
   * suits every application; the operator chooses it. A pass purges in the small, paced batches
   * of `yard.purge` and stops early, so the next pass's re-drives wait little behind it.
   */
  retention: {
    /** Jobs per store batch (a batch locks only these jobs' rows). */
    batchJobs: 100,
    /** Task rows per store batch. */
    batchTasks: 5000,
    /** Pause between batches, so running jobs' statements get their turn. */
    pauseMs: 20,
    /** Most store batches per pass, over every status: the rest waits for the next pass. */
    maxBatchesPerPass: 10,
    /** A pass starts no batch after this long (its last batch may end a little later). */
    maxPassMs: 2000,
  },
  work: {
    /** Task handlers running at once per worker. */
    concurrency: 64,
    /**
     * The most tasks a task loop holds beyond its slots when neither `work({ prefetch })` nor the
     * transport (`limits.prefetchPerSlot`) says: none. A held message keeps its lock only by
     * renewal, and prefetch is not yet shown safe under kills on every transport
     * (bench/RELIABILITY.md), so only a transport that recommends it prefetches by default.
     */
    prefetch: 0,
    /** Lock / visibility asked of the transport. */
    visibilityTimeoutMs: 60_000,
    /** Idle wait per receive call. */
    waitMs: 1000,
    /** Receive calls in flight per task queue. */
    receivers: 2,
    /** Stage messages processed at once per worker (a stage message is a fan-out or a finish). */
    stageConcurrency: 2,
    /** Receive calls in flight on a stage queue. */
    stageReceivers: 1,
    /** A failing receive backs off from this delay, doubling up to `maxReceiveBackoffMs`. */
    receiveBackoffMs: 250,
    maxReceiveBackoffMs: 10_000,
  },
  waitFor: { pollIntervalMs: 200 },
  /** Per-key concurrency and rate limits (a task's `concurrency` / `rateLimit`). */
  flowControl: {
    /**
     * A key slot's lease, renewed every third of it while its handler runs: a worker that dies
     * holding a slot loses it at most this long after its last renewal.
     */
    slotLeaseMs: 30_000,
    /**
     * A refused task's message comes back after a wait that starts here and doubles with each
     * refusal of the task, up to `maxWaitMs` (half of it fixed, half at random, so waiting
     * tasks do not all come back at once).
     */
    initialWaitMs: 250,
    maxWaitMs: 5000,
    /** A rate-limited task waits at most this long for its start before it asks again. */
    maxRateWaitMs: 60_000,
  },
  /**
   * How often a Switchyard checks whether the jobs of its running handlers (those that read
   * `ctx.signal`) were cancelled, when the store does not tell of cancels at once.
   */
  cancelCheckIntervalMs: DEFAULT_CANCEL_CHECK_MS,
  /**
   * The group-commit batchers. Barrier batches keep three statements in flight: each waits for
   * its commit to be durable, and a store that flushes concurrent commits together does so in one
   * flush; claims and admissions are reads and a cheap update, two are enough to hide a round trip.
   */
  batchers: {
    claims: { maxBatch: 1000, inFlight: 2 },
    admissions: { maxBatch: 1000, inFlight: 2 },
    completions: { maxBatch: 1000, inFlight: 3 },
    retries: { maxBatch: 1000, inFlight: 1 },
    settlements: { maxBatch: 500, inFlight: 2 },
    slotReleases: { maxBatch: 500, inFlight: 1 },
  } satisfies Record<string, BatcherSize>,
  /** The fairness window's releases (`batching.window`). */
  window: {
    /** A release the store refused is asked again after this pause. */
    retryMs: 1000,
    /** Background releases start at least this far apart, each covering what finished meanwhile. */
    gatherMs: 10,
    /** Running jobs read per page by the reconciler's sweep of stalled windows. */
    sweepPageSize: 100,
  },
  /** Jobs whose immutable facts a worker keeps in memory. */
  jobCacheSize: 10_000,
  /** Results per page when a fan-out or `results()` reads a stage's results. */
  resultsPageSize: 5000,
  /** Stage-message deliveries after which a failing fan-out or finalize fails the job. */
  maxStageDeliveries: 5,
  schedules: {
    catchUp: 'latest',
    /** Most fires per schedule, delayed jobs released and deadlines expired per pass. */
    limit: 100,
    pass: {
      /** How often `work()` runs a scheduler pass; 0 disables it. */
      intervalMs: 5000,
      /** The evaluating instance's lease: another takes over this long after it dies. */
      leaseMs: 30_000,
      /** A fire older than this when evaluated counts as missed. */
      graceMs: 60_000,
    },
  },
  /** Most characters of an idempotency key. */
  maxIdempotencyKeyLength: 200,
  batching: {
    /** Tasks inserted and sent per fan-out chunk. */
    chunkSize: 2000,
    /** Tasks per task message, unless the transport recommends a number (`limits.packTasks`). */
    packTasks: 1,
    /**
     * Packing by the transport's recommendation, a fan-out chunk of n tasks packs at most
     * ⌈n / spreadOver⌉ per message: a small stage packed whole would be one message, run by one
     * worker while the others idle; a chunk of 1,000 tasks or more still packs 64 per message.
     */
    spreadOver: 16,
    /**
     * Tasks of one stage waiting in the transport (fairness between jobs), unless the transport
     * recommends a number (`limits.window`): a job behind waits for at most this many of another
     * job's tasks, and at tens of thousands of tasks a second the queue still holds more than the
     * workers take between two releases (a barrier batch's, at least `window.gatherMs` apart).
     */
    window: 1024,
  },
} as const;
