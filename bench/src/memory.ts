import { memoryStore, memoryTransport } from '@switchyard/core';
import { type HelloRun, round, runHello } from './hello.js';

/**
 * `hello_world` end to end on the memory drivers at growing n: the engine's own overhead, with no
 * I/O. The scaling figure is the per-task cost at the largest n over the cost at the middle one.
 */
export async function runMemoryBench(args: {
  n?: number[];
  /** `batching.window`; `false` sends every task as it is inserted. @defaultValue the engine's */
  window?: number | false;
  log: (line: string) => void;
}) {
  const sizes = args.n ?? [1000, 10_000, 100_000];
  const options = args.window === undefined ? {} : { batching: { window: args.window } };
  // Warm up the JIT so the first size is not penalised for compiling the engine.
  await runHello(2000, { store: memoryStore(), transport: memoryTransport() }, options);
  const runs: HelloRun[] = [];
  for (const n of sizes) {
    const run = await runHello(n, { store: memoryStore(), transport: memoryTransport() }, options);
    runs.push(run);
    args.log(
      `memory  n=${String(n).padStart(7)}  tasks=${String(run.tasks).padStart(7)}  ${run.seconds.toFixed(2).padStart(7)} s  ${Math.round(run.tasksPerSecond).toLocaleString('en-US').padStart(8)} tasks/s`,
    );
  }
  const byN = new Map(runs.map((r) => [r.n, r]));
  const big = byN.get(100_000);
  const mid = byN.get(10_000);
  const scaling = big && mid ? round(big.seconds / big.tasks / (mid.seconds / mid.tasks)) : null;
  if (scaling !== null) args.log(`per-task cost at n=100,000 / n=10,000: ${scaling}x`);
  return {
    scenario: 'memory',
    window: args.window ?? 'default',
    runs,
    perTaskCostRatio100kTo10k: scaling,
    node: process.version,
  };
}
