import { randomBytes } from 'node:crypto';
import {
  createSwitchyard,
  defineJob,
  defineTask,
  type Switchyard,
  silentLogger,
  stage,
} from '@switchyard/core';
import { postgresStore, postgresTransport } from '@switchyard/driver-postgres';
import pg from 'pg';
import { z } from 'zod';

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** True when PostgreSQL answers; with REQUIRE_SERVICES=1 an unreachable server throws. */
export async function postgresAvailable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    return true;
  } catch (err) {
    if (process.env.REQUIRE_SERVICES === '1')
      throw new Error(
        `REQUIRE_SERVICES=1 but PostgreSQL is unreachable: ${(err as Error).message}`,
      );
    console.warn(
      '[dashboard tests] PostgreSQL unreachable: skipping. Set REQUIRE_SERVICES=1 to fail.',
    );
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Switches shared by the test jobs' handlers and the tests. */
export const control = {
  /** Task indexes of `flaky` that fail until healed. */
  healed: false,
};

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });

const squaresParams = z.object({
  n: z.number().int().min(0),
  workMs: z.number().int().min(0).default(0),
  label: z.string().optional(),
});
const flakyParams = z.object({
  n: z.number().int(),
  poison: z.array(z.number().int()),
  message: z.string(),
});

/** `squares`: n tasks squaring their index after `workMs`, then one task summing them. */
export const squares = defineJob({
  name: 'squares',
  params: squaresParams,
  stages: [
    stage({
      name: 'square',
      task: defineTask({
        name: 'square',
        handler: async (input: { i: number; workMs: number }, ctx) => {
          if (input.workMs > 0) await sleep(input.workMs, ctx.signal);
          return input.i * input.i;
        },
      }),
      *fanOut(params: z.output<typeof squaresParams>) {
        for (let i = 0; i < params.n; i++) yield { i, workMs: params.workMs };
      },
    }),
    stage({
      name: 'sum',
      task: defineTask({ name: 'sum', handler: (total: number) => ({ total }) }),
      async *fanOut(_params, ctx) {
        let total = 0;
        for await (const r of ctx.results<number>('square')) total += r.result;
        yield total;
      },
    }),
  ],
});

/** `flaky`: n tasks; those listed in `poison` fail (with `message`) until `control.healed`. */
export const flaky = defineJob({
  name: 'flaky',
  params: flakyParams,
  stages: [
    stage({
      name: 'attempt',
      task: defineTask({
        name: 'attempt',
        retry: { maxAttempts: 2, initialDelayMs: 10, jitter: 0 },
        handler: (input: { i: number; poisoned: boolean; message: string }) => {
          if (input.poisoned && !control.healed) throw new Error(input.message);
          return { i: input.i };
        },
      }),
      *fanOut(params: z.output<typeof flakyParams>) {
        for (let i = 0; i < params.n; i++)
          yield { i, poisoned: params.poison.includes(i), message: params.message };
      },
    }),
  ],
});

export interface TestYard {
  yard: Switchyard;
  schema: string;
  transports: ReturnType<typeof postgresTransport>[];
  close(): Promise<void>;
}

/** A Switchyard on a fresh schema: the Postgres store, a Postgres and a second Postgres-queue path. */
export async function testYard(): Promise<TestYard> {
  const schema = `dash_${randomBytes(6).toString('hex')}`;
  const store = postgresStore({ connectionString: DATABASE_URL, schema });
  const transports = [
    postgresTransport({
      connectionString: DATABASE_URL,
      schema,
      name: 'postgres',
      pollIntervalMs: 100,
    }),
    postgresTransport({
      connectionString: DATABASE_URL,
      schema,
      name: 'queue-b',
      pollIntervalMs: 100,
    }),
  ];
  const yard = createSwitchyard({
    jobs: [squares, flaky],
    store,
    transports,
    logger: silentLogger,
  });
  await store.init?.();
  return {
    yard,
    schema,
    transports,
    async close() {
      await yard.close();
      const admin = new pg.Client({ connectionString: DATABASE_URL });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    },
  };
}
