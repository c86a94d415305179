/**
 * The whole driver construction path with Key Vault references: each driver is given
 * `{ secret }` names only, the real SDKs fetch them from (a msw fake of) Entra ID and Key Vault,
 * and the drivers then talk to their real local backends — PostgreSQL, Azurite, the Service Bus
 * emulator — with what the vault returned.
 */
import { randomBytes } from 'node:crypto';
import { ClientSecretCredential } from '@azure/identity';
import { keyVaultSecrets } from '@switchyard/azure';
import type { Transport } from '@switchyard/core/driver';
import { postgresStore } from '@switchyard/driver-postgres';
import { serviceBusTransport } from '@switchyard/driver-servicebus';
import { storageQueueTransport } from '@switchyard/driver-storagequeue';
import { startEmulator } from '@switchyard/servicebus-emulator';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLIENT_ID,
  CLIENT_SECRET,
  fakeAzure,
  TENANT,
  VAULT_URL,
} from '../../../packages/azure/test/mock-azure.js';
import { startAzurite } from '../../../packages/driver-storagequeue/test/azurite.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A PostgreSQL server is required in CI; elsewhere its case is skipped when none answers. */
async function serverReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    return true;
  } catch (err) {
    if (process.env.REQUIRE_SERVICES === '1')
      throw new Error('REQUIRE_SERVICES=1 but PostgreSQL is unreachable', { cause: err });
    console.warn('[integration] PostgreSQL unreachable: skipping the postgresStore case');
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}
const server = await serverReachable();
const azure = fakeAzure();
const vault = () =>
  keyVaultSecrets({
    vaultUrl: VAULT_URL,
    credential: new ClientSecretCredential(TENANT, CLIENT_ID, CLIENT_SECRET),
  });

// Only the vault and login hosts are faked; the backends on loopback are real.
beforeAll(() => azure.server.listen({ onUnhandledRequest: 'bypass' }));
afterAll(() => azure.server.close());

async function roundTrip(transport: Transport): Promise<string | undefined> {
  await transport.send('task', [{ body: 'from-a-vault-configured-driver' }]);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const [message] = await transport.receive('task', { maxMessages: 1, waitMs: 500 });
    if (message) {
      await transport.settle([{ message, action: 'complete' }]);
      return message.body;
    }
  }
  return undefined;
}

describe('drivers configured with Key Vault references', () => {
  it.skipIf(!server)(
    'postgresStore connects with a connection string read from the vault',
    {
      timeout: 60_000,
    },
    async () => {
      azure.secrets.set('database-url', DATABASE_URL);
      const schema = `kv_${randomBytes(5).toString('hex')}`;
      const store = postgresStore({ secret: 'database-url', secrets: vault(), schema });
      try {
        await store.init?.();
        const { created } = await store.createJob({
          id: 'kv-job',
          name: 'x',
          params: {},
          transport: 'postgres',
          stageCount: 1,
        });
        expect(created).toBe(true);
        expect(azure.counts.vaultGets).toBe(1);
      } finally {
        await store.close();
        const admin = new pg.Client({ connectionString: DATABASE_URL });
        await admin.connect();
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await admin.end();
      }
    },
  );

  it('storageQueueTransport sends and receives with a connection string read from the vault', {
    timeout: 60_000,
  }, async () => {
    const azurite = await startAzurite();
    try {
      azure.secrets.set('storage-connection', azurite.connectionString);
      const name = `kv-${randomBytes(4).toString('hex')}`;
      const transport = storageQueueTransport({
        connectionString: { secret: 'storage-connection', source: vault() },
        queues: { stage: `${name}-s`, task: `${name}-t` },
      });
      expect(await roundTrip(transport)).toBe('from-a-vault-configured-driver');
      await transport.close();
    } finally {
      await azurite.stop();
    }
  });

  it('serviceBusTransport sends and receives with a connection string read from the vault', {
    timeout: 60_000,
  }, async () => {
    const emulator = await startEmulator({ port: 0 });
    try {
      azure.secrets.set('servicebus-connection', emulator.connectionString);
      const name = randomBytes(4).toString('hex');
      const transport = serviceBusTransport({
        connectionString: { secret: 'servicebus-connection', source: vault() },
        queues: { stage: `kv-jobs-${name}`, task: `kv-tasks-${name}` },
      });
      expect(await roundTrip(transport)).toBe('from-a-vault-configured-driver');
      await transport.close();
    } finally {
      await emulator.close();
    }
  });
});
