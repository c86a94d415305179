/**
 * The store's hot round trips as group commits (see {@link Batcher}): claims, pack admissions,
 * outcomes and retries of concurrent tasks share one statement each. Recording outcomes is the
 * fan-in barrier: the stage completions it reports are acted on before any task's message is
 * settled, so a crash between the two redelivers a message that finds the advance to redo.
 */
import type { Span } from '@opentelemetry/api';
import type { TaskEnvelope } from '../envelope.js';
import type {
  ClaimRef,
  PackAdmission,
  StageCompletion,
  Store,
  TaskClaim,
  TaskOutcome,
  TaskRetry,
} from '../store.js';
import { ATTR } from '../telemetry/attributes.js';
import { barrierSpan } from '../telemetry/steps.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { Batcher } from '../util/batcher.js';
import { DEFAULTS } from './defaults.js';
import type { InboundMessage } from './inbound.js';
import type { StageKey } from './stages/task-window.js';

export interface BarrierOptions {
  store: Store;
  /** Called for each stage an outcome batch completed, before the batch's callers resume. */
  onStageComplete: (completion: StageCompletion) => Promise<void>;
  /**
   * Told of the stages whose queued tasks may have room: those a claim or admission batch took
   * tasks of (they left the queue), and those an outcome batch finished tasks of and did not
   * complete, once the batch is recorded. Their fairness windows release the next tasks. Must not
   * throw or block.
   */
  onRoom?: (stages: StageKey[]) => void;
  /** Traces each outcome batch (no-op without an OpenTelemetry SDK). */
  telemetry?: Telemetry;
}

export class Barrier {
  private readonly claims: Batcher<ClaimRef, TaskClaim>;
  /** Present when the store admits packs as a whole (`Store.admitPacks`). */
  private readonly admissions: Batcher<PackAdmission, boolean> | undefined;
  private readonly completions: Batcher<TaskOutcome, boolean>;
  private readonly retries: Batcher<TaskRetry, undefined>;

  constructor({ store, onStageComplete, onRoom, telemetry }: BarrierOptions) {
    const sizes = DEFAULTS.batchers;
    this.claims = new Batcher(
      async (refs) => {
        const claims = await store.claimTasks(refs);
        onRoom?.(stagesOf(refs.filter((_, i) => claims[i]?.outcome === 'run')));
        return claims;
      },
      sizes.claims.maxBatch,
      sizes.claims.inFlight,
    );
    const admitPacks = store.admitPacks?.bind(store);
    this.admissions = admitPacks
      ? new Batcher(
          async (packs: readonly PackAdmission[]) => {
            const admitted = await admitPacks(packs);
            onRoom?.(stagesOf(packs.filter((_, i) => admitted[i])));
            return admitted;
          },
          sizes.admissions.maxBatch,
          sizes.admissions.inFlight,
        )
      : undefined;
    this.completions = new Batcher(
      async (outcomes) => {
        const record = async (span?: Span) => {
          // Two deliveries of one task (a duplicate) may land in one batch: only the first goes to
          // the store, the other is answered "not applied", so exactly one caller acts on it (a
          // store reports applied tasks by id, not which of two outcomes it took).
          const first = new Map<string, number>();
          const unique = outcomes.filter((o, i) => !first.has(o.taskId) && first.set(o.taskId, i));
          const { applied, completedStages } = await store.completeTasks(unique);
          span?.setAttribute(ATTR.stagesCompleted, completedStages.length);
          for (const completion of completedStages) await onStageComplete(completion);
          if (onRoom && applied.length > 0) onRoom(openStages(unique, completedStages));
          const set = new Set(applied);
          return outcomes.map((o, i) => first.get(o.taskId) === i && set.has(o.taskId));
        };
        if (!telemetry) return record();
        const batch = {
          jobId: outcomes[0]!.jobId,
          size: outcomes.length,
          operation: 'complete' as const,
        };
        return telemetry.inSpan(barrierSpan(telemetry, batch), record);
      },
      sizes.completions.maxBatch,
      sizes.completions.inFlight,
    );
    this.retries = new Batcher(
      async (items) => {
        await store.retryTasks(items);
        return items.map(() => undefined);
      },
      sizes.retries.maxBatch,
      sizes.retries.inFlight,
    );
  }

  /** Claims (or admits) one task for an attempt. */
  claim(ref: ClaimRef): Promise<TaskClaim> {
    return this.claims.add(ref);
  }

  /** Claims several tasks under one promise (a pack's). */
  claimAll(refs: readonly ClaimRef[]): Promise<TaskClaim[]> {
    return this.claims.addMany(refs);
  }

  /** True when the store admits a fan-out's own pack with one check for the whole pack. */
  get admitsPacks(): boolean {
    return this.admissions !== undefined;
  }

  /** Admits a pack as a whole; false when its job is not running or its stage is complete. */
  admitPack(admission: PackAdmission): Promise<boolean> {
    if (!this.admissions) throw new Error('the store does not admit packs');
    return this.admissions.add(admission);
  }

  /** Records a task's terminal outcome; true if this call applied it (it was not terminal yet). */
  complete(outcome: TaskOutcome): Promise<boolean> {
    return this.completions.add(outcome);
  }

  /** Records a failed attempt that will be retried. */
  retry(retry: TaskRetry): Promise<void> {
    return this.retries.add(retry);
  }
}

/**
 * What to claim for one task message. The first delivery of a fan-out's own message is admitted
 * (nothing written); any other delivery is claimed, and counts attempts the earlier deliveries
 * may not have recorded. (A plain fixed-shape object: this runs once per task.)
 */
export function claimRef(envelope: TaskEnvelope, index: number, message: InboundMessage): ClaimRef {
  return {
    jobId: envelope.jobId,
    stage: envelope.stage,
    index,
    taskId: envelope.taskId,
    minAttempt: (envelope.attempts ?? 0) + message.deliveryCount,
    admitOnly: message.deliveryCount === 1 && envelope.attempts === undefined,
    withInput: !('input' in envelope),
  };
}

/** The stages of a batch's outcomes, less those the batch completed. */
function openStages(
  outcomes: readonly TaskOutcome[],
  completed: readonly StageCompletion[],
): StageKey[] {
  const stages = stageMap(outcomes);
  for (const { jobId, stage } of completed) stages.delete(`${jobId}:${stage}`);
  return [...stages.values()];
}

/** The stages of a batch's items, once each. */
function stagesOf(items: readonly StageKey[]): StageKey[] {
  return items.length === 0 ? [] : [...stageMap(items).values()];
}

function stageMap(items: readonly StageKey[]): Map<string, StageKey> {
  const stages = new Map<string, StageKey>();
  let last: StageKey | undefined;
  for (const { jobId, stage } of items) {
    // A batch's items come in runs of one stage: a key is built once per run.
    if (last?.jobId === jobId && last.stage === stage) continue;
    last = { jobId, stage };
    stages.set(`${jobId}:${stage}`, last);
  }
  return stages;
}
