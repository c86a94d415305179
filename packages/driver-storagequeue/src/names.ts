import { type FieldIssue, ValidationError } from '@switchyard/core';

/** Suffix of a queue's poison queue, the Azure Functions convention. */
export const POISON_SUFFIX = '-poison';

const NAME_RULE = /^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/;

/** Why `name` is not a valid Storage queue name, or undefined when it is. */
export function queueNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return `must be 3–63 characters (is ${name.length})`;
  if (!NAME_RULE.test(name)) {
    return 'must be lowercase letters, digits and single hyphens, starting and ending with a letter or digit';
  }
  return undefined;
}

/** The Storage queues behind one queue kind. */
export interface QueueLayout {
  /** Queues messages are sent to and received from (one, or one per shard). */
  queues: string[];
}

/**
 * Derives the storage queue names of a kind: `base`, or `base-0` … `base-N-1` when sharded, each
 * with its own `<queue>-poison`, and checks every derived name (the longest one decides whether
 * the suffixes still fit in 63 characters). Pushes one issue naming `field` per problem.
 */
export function layoutFor(
  field: string,
  base: string,
  shards: number,
  issues: FieldIssue[],
): string[] {
  const queues = shards > 1 ? Array.from({ length: shards }, (_, i) => `${base}-${i}`) : [base];
  const baseProblem = queueNameProblem(base);
  if (baseProblem) {
    issues.push({ path: field, message: `queue name "${base}" ${baseProblem}` });
    return queues;
  }
  const longest = `${queues[queues.length - 1]}${POISON_SUFFIX}`;
  const derivedProblem = queueNameProblem(longest);
  if (derivedProblem) {
    issues.push({
      path: field,
      message: `queue name "${base}" is too long once the ${shards > 1 ? 'shard and ' : ''}"${POISON_SUFFIX}" suffixes are added ("${longest}" ${derivedProblem})`,
    });
  }
  return queues;
}

/** Throws a {@link ValidationError} listing every issue, if there are any. */
export function throwIfIssues(issues: FieldIssue[]): void {
  if (issues.length === 0) return;
  throw new ValidationError(
    `invalid storageQueueTransport options: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    issues,
  );
}
