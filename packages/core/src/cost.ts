/**
 * `withCost`: adds each transport's billable operations and their estimated cost to store metrics,
 * from its transport's optional {@link UsageCapability}. Core knows no price: each driver
 * supplies its own `estimateCost`.
 * @module
 */
import type { TransportMetrics } from './store.js';
import type { Transport } from './transport.js';

const PER_MILLION = 1_000_000;

/** Options of {@link withCost}. */
export interface WithCostOptions {
  /**
   * The task executions the counted operations paid for, by transport name. A transport counts
   * the operations of its own process, so a running Switchyard passes the attempts it settled on
   * each path: a process that ran none (a CLI, an HTTP front end) reports no per-task figure
   * instead of dividing its few calls by the store's all-time total.
   * @defaultValue each path's `tasks.total` (exact when one process did all of the path's work, as in a benchmark)
   */
  executions?: (transport: string) => number;
}

/**
 * Returns `paths` with `usage` (and `cost`, where the transport estimates one) on each path whose
 * transport — matched by its configured name (a map) or its `name` — counts its operations. Paths
 * without such a transport are returned unchanged. Pure: `paths` is not modified.
 *
 * @example
 * ```ts
 * const paths = withCost(await store.metrics(), [serviceBus, storageQueues]);
 * ```
 */
export function withCost(
  paths: readonly TransportMetrics[],
  transports: readonly Transport[] | ReadonlyMap<string, Transport>,
  options: WithCostOptions = {},
): TransportMetrics[] {
  // A map names each transport as the Switchyard configured it (the name jobs record).
  const byName: ReadonlyMap<string, Transport> = Array.isArray(transports)
    ? new Map(transports.map((t) => [t.name, t]))
    : (transports as ReadonlyMap<string, Transport>);
  return paths.map((path) => {
    const transport = byName.get(path.transport);
    if (!transport?.usage) return path;
    const usage = transport.usage();
    const tasks = options.executions ? options.executions(path.transport) : path.tasks.total;
    const out: TransportMetrics = {
      ...path,
      usage: {
        operations: { ...usage.operations },
        billableOperations: usage.billable,
        throttled: usage.throttled,
        perTask: tasks > 0 ? usage.billable / tasks : null,
      },
    };
    if (transport.estimateCost) {
      const cost = transport.estimateCost(usage);
      out.cost = {
        currency: cost.currency,
        amount: cost.amount,
        perMillionTasks: tasks > 0 ? (cost.amount / tasks) * PER_MILLION : null,
        basis: cost.basis,
      };
    }
    return out;
  });
}
