import { type FieldIssue, PRIORITIES, type Priority, ValidationError } from '@switchyard/core';

/** Suffix of a queue's poison queue, the Azure Functions convention. */
export const POISON_SUFFIX = '-poison';

/**
 * Suffix of each priority lane's queue after the task queue's name. `normal` has none: it is the
 * task queue itself, so turning lanes on leaves every message already queued in a lane that is read.
 */
export const LANE_SUFFIX: Readonly<Record<Priority, string>> = Object.freeze({
  high: '-high',
  normal: '',
  low: '-low',
});

const NAME_RULE = /^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/;

/** Why `name` is not a valid Storage queue name, or undefined when it is. */
export function queueNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return `must be 3–63 characters (is ${name.length})`;
  if (!NAME_RULE.test(name)) {
    return 'must be lowercase letters, digits and single hyphens, starting and ending with a letter or digit';
  }
  return undefined;
}

/** The Storage queues of one lane of a queue kind. */
export interface Lane {
  /** The priority the lane carries; undefined on a kind without lanes. */
  readonly priority: Priority | undefined;
  /** Queues messages are sent to and received from: one, or one per shard. */
  readonly queues: readonly string[];
}

function shardQueues(base: string, shards: number): string[] {
  return shards > 1 ? Array.from({ length: shards }, (_, i) => `${base}-${i}`) : [base];
}

/**
 * Derives the storage queues of a kind: `base`, or `base-0` … `base-N-1` when sharded, each with
 * its own `<queue>-poison`; with `lanes`, also `base-high` and `base-low` (sharded alike) beside
 * `base` as the `normal` lane. Checks the base name and the longest derived name (whether the
 * suffixes still fit in 63 characters); pushes one issue naming `field` per problem.
 */
export function layoutFor(
  field: string,
  base: string,
  shards: number,
  issues: FieldIssue[],
  lanes = false,
): Lane[] {
  const layout: Lane[] = lanes
    ? // Highest first: the order lanes are listed in (dead letters, triggers, created queues).
      PRIORITIES.map((priority) => ({
        priority,
        queues: shardQueues(`${base}${LANE_SUFFIX[priority]}`, shards),
      }))
    : [{ priority: undefined, queues: shardQueues(base, shards) }];
  const baseProblem = queueNameProblem(base);
  if (baseProblem) {
    issues.push({ path: field, message: `queue name "${base}" ${baseProblem}` });
    return layout;
  }
  const longest = layout
    .map((lane) => `${lane.queues[lane.queues.length - 1]}${POISON_SUFFIX}`)
    .reduce((a, b) => (b.length > a.length ? b : a));
  const derivedProblem = queueNameProblem(longest);
  if (derivedProblem) {
    const suffixes = [
      ...(lanes ? [`lane ("${LANE_SUFFIX.high}")`] : []),
      ...(shards > 1 ? ['shard'] : []),
      `"${POISON_SUFFIX}"`,
    ];
    const listed =
      suffixes.length > 1
        ? `${suffixes.slice(0, -1).join(', ')} and ${suffixes[suffixes.length - 1]}`
        : suffixes[0];
    issues.push({
      path: field,
      message: `queue name "${base}" is too long once the ${listed} suffixes are added ("${longest}" ${derivedProblem})`,
    });
  }
  return layout;
}

/** Every queue of `lanes`, highest lane first. */
export function queuesOf(lanes: readonly Lane[]): string[] {
  return lanes.flatMap((lane) => lane.queues);
}

/** Throws a {@link ValidationError} listing every issue, if there are any. */
export function throwIfIssues(issues: FieldIssue[]): void {
  if (issues.length === 0) return;
  throw new ValidationError(
    `invalid storageQueueTransport options: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    issues,
  );
}
