import {
  createSwitchyard,
  memoryStore,
  memoryTransport,
  type Switchyard,
  type SwitchyardOptions,
  silentLogger,
} from '@switchyard/core';
import type { Store, Transport } from '@switchyard/core/driver';

type Jobs = SwitchyardOptions<readonly { readonly name: string }[]>['jobs'];

export interface Harness<J extends Jobs> {
  yard: Switchyard<J>;
  yards: Switchyard<J>[];
  store: Store;
  transport: Transport;
  stop(): Promise<void>;
}

/** Starts `workers` Switchyards sharing one store and transport, each running `work()`. */
export function startYards<const J extends Jobs>(
  jobs: J,
  options: Partial<Omit<SwitchyardOptions<J>, 'jobs'>> & {
    workers?: number;
    concurrency?: number;
    visibilityTimeoutMs?: number;
  } = {},
): Harness<J> {
  const store = options.store ?? memoryStore();
  const transport =
    (options.transports as Transport[] | undefined)?.[0] ??
    memoryTransport({ visibilityTimeoutMs: 500 });
  const controller = new AbortController();
  const yards: Switchyard<J>[] = [];
  const loops: Promise<void>[] = [];
  for (let i = 0; i < (options.workers ?? 1); i++) {
    const yard = createSwitchyard({
      logger: silentLogger,
      reconcile: { intervalMs: 0 },
      ...options,
      jobs,
      store,
      transports: [transport],
    });
    yards.push(yard);
    loops.push(
      yard.work({
        concurrency: options.concurrency ?? 32,
        signal: controller.signal,
        visibilityTimeoutMs: options.visibilityTimeoutMs ?? 500,
        waitMs: 50,
      }),
    );
  }
  return {
    yard: yards[0]!,
    yards,
    store,
    transport,
    async stop() {
      controller.abort();
      await Promise.all(loops);
      await store.close();
      await transport.close();
    },
  };
}
