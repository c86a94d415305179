import {
  createSwitchyard,
  defineJob,
  defineTask,
  memoryStore,
  memoryTransport,
  silentLogger,
  stage,
} from '@switchyard/core';
import type { Store } from '@switchyard/core/driver';
import { createHttpHandler, type HttpHandlerOptions } from '@switchyard/core/http';
import { z } from 'zod';

export const TOKEN = 'test-token-0123456789abcdef';

const square = defineTask({
  name: 'square',
  input: z.object({ i: z.number().int() }),
  handler: async ({ i }) => i * i,
});

export const squares = defineJob({
  name: 'squares',
  params: z.object({
    n: z.number().int().min(0).max(1000),
    label: z.string().max(20).optional(),
  }),
  stages: [
    stage({
      name: 'square',
      task: square,
      *fanOut({ n }: { n: number }) {
        for (let i = 0; i < n; i++) yield { i };
      },
    }),
  ],
  finalize: ({ stages }) => ({ squared: stages[0]?.succeeded ?? 0 }),
});

/** A store that records every method call, to prove a request touched nothing. */
export function spyStore(inner: Store = memoryStore()): { store: Store; calls: string[] } {
  const calls: string[] = [];
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, calls };
}

/** The seed's flag: `use_service_bus: true` → the `servicebus` path, `false` → `memory`. */
export const USE_SERVICE_BUS = { use_service_bus: { whenTrue: 'servicebus', whenFalse: 'memory' } };

/**
 * A Switchyard on memory drivers with two paths (`servicebus`, `memory`) and its HTTP handler,
 * with the `use_service_bus` transport flag configured as the hosts configure it.
 */
export function makeApi(options: Partial<HttpHandlerOptions> = {}, store: Store = memoryStore()) {
  const yard = createSwitchyard({
    jobs: [squares],
    store,
    transports: [
      memoryTransport({ name: 'memory', visibilityTimeoutMs: 500 }),
      memoryTransport({ name: 'servicebus', visibilityTimeoutMs: 500 }),
    ],
    logger: silentLogger,
    reconcile: { intervalMs: 0 },
  });
  const handler = createHttpHandler(yard, {
    auth: { bearerTokens: [TOKEN] },
    logger: silentLogger,
    transportFlags: USE_SERVICE_BUS,
    ...options,
  });
  const call = (
    method: string,
    path: string,
    init: { body?: string; headers?: Record<string, string>; token?: string | null } = {},
  ) => {
    const headers: Record<string, string> = { ...init.headers };
    const token = init.token === undefined ? TOKEN : init.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (
      init.body !== undefined &&
      !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')
    )
      headers['content-type'] = 'application/json';
    return handler(
      new Request(`http://localhost${path}`, {
        method,
        headers,
        ...(init.body === undefined ? {} : { body: init.body }),
      }),
    );
  };
  return { yard, handler, call };
}

export async function bodyOf(res: Response): Promise<Record<string, unknown>> {
  const text = await res.text();
  return JSON.parse(text) as Record<string, unknown>;
}
