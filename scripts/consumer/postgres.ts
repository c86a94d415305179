// A user's application on PostgreSQL, compiled against the packed tarballs of core and
// driver-postgres alone: `node postgres.js <schema>`, a fresh schema on the server at DATABASE_URL.
import { createSwitchyard, defineJob, defineTask } from '@switchyard/core';
import { postgresStore, postgresTransport } from '@switchyard/driver-postgres';

const double = defineTask({ name: 'double', handler: (n: number) => n * 2 });
const doubles = defineJob({
  name: 'doubles',
  stages: (job) => job.stage({ name: 'double', task: double, fanOut: () => [1, 2, 3] }),
  finalize: async ({ results }) => {
    let sum = 0;
    for await (const r of results('double')) sum += r.result;
    return sum;
  },
});

const connectionString = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = process.argv[2] ?? 'switchyard_consumer';
const yard = createSwitchyard({
  jobs: [doubles],
  store: postgresStore({ connectionString, schema }),
  transports: [postgresTransport({ connectionString, schema, pollIntervalMs: 50 })],
});
const stop = new AbortController();
const working = yard.work({ signal: stop.signal, waitMs: 50 });
const { jobId } = await yard.submit('doubles', undefined);
const done = await yard.waitFor(jobId, { pollIntervalMs: 20 });
stop.abort();
await working;
await yard.close();
const sum: number | undefined = done.result;
if (done.status !== 'succeeded' || sum !== 12) throw new Error(`job ${done.status}: ${sum}`);
console.log(`postgres: ${done.status}, sum ${sum}`);
