import { inspect } from 'node:util';
import { ClientSecretCredential } from '@azure/identity';
import { isSwitchyardError, type SwitchyardError } from '@switchyard/core';
import { cachedSecret, isSecretRef } from '@switchyard/core/driver';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { configFromEnv } from '../src/index.js';
import { CLIENT_ID, CLIENT_SECRET, fakeAzure, TENANT, VAULT_URL } from './mock-azure.js';

const SB =
  'Endpoint=sb://my-ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=SbKeyAbc123+/=';
const STORAGE =
  'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=StKeyXyz789==;EndpointSuffix=core.windows.net';
const DB = 'postgres://app:DbPassw0rd@db.example.com:5432/app';
const API_KEY = 'api-key-0123456789abcdef';

function configError(env: Record<string, string>): SwitchyardError {
  try {
    configFromEnv(env);
  } catch (err) {
    if (isSwitchyardError(err)) return err;
    throw err;
  }
  throw new Error('expected CONFIG_ERROR');
}

describe('configFromEnv', () => {
  it('applies defaults to an empty environment', () => {
    const config = configFromEnv({});
    expect(config.serviceBus).toEqual({
      enabled: false,
      jobQueue: 'sb-jobs',
      taskQueue: 'sb-tasks',
      maxDeliveryCount: 10,
      priorityLanes: false,
    });
    expect(config.storageQueue).toEqual({
      enabled: false,
      connectionSetting: 'AzureWebJobsStorage',
      jobQueue: 'sq-jobs',
      taskQueue: 'sq-tasks',
      maxDequeueCount: 5,
      priorityLanes: false,
    });
    expect(config.database).toEqual({ schema: 'switchyard' });
    expect(config.secrets.name).toBe('env');
    expect(config.keyVaultUrl).toBeUndefined();
  });

  it('reads a full local (connection string) configuration', () => {
    const config = configFromEnv({
      ENABLE_SERVICE_BUS: 'true',
      SERVICE_BUS_CONNECTION_STRING: SB,
      SERVICE_BUS_JOB_QUEUE: 'jobs',
      ENABLE_STORAGE_QUEUE: 'TRUE',
      AzureWebJobsStorage: STORAGE,
      STORAGE_TASK_QUEUE: 'my-tasks',
      DATABASE_URL: DB,
      DATABASE_SCHEMA: 'yard',
      SWITCHYARD_DEFAULT_TRANSPORT: 'servicebus',
      SWITCHYARD_API_KEY: API_KEY,
    });
    expect(config.serviceBus).toEqual({
      enabled: true,
      connectionString: SB,
      jobQueue: 'jobs',
      taskQueue: 'sb-tasks',
      maxDeliveryCount: 10,
      priorityLanes: false,
    });
    expect(config.storageQueue).toMatchObject({
      enabled: true,
      connectionString: STORAGE,
      taskQueue: 'my-tasks',
    });
    expect(config.database).toEqual({ url: DB, schema: 'yard' });
    expect(config.defaultTransport).toBe('servicebus');
    expect(config.apiKey).toBe(API_KEY);
  });

  it('reads credential mode: namespace and account URL', () => {
    const config = configFromEnv({
      ENABLE_SERVICE_BUS: 'true',
      SERVICE_BUS_NAMESPACE: 'my-namespace',
      ENABLE_STORAGE_QUEUE: 'true',
      AzureWebJobsStorage__accountName: 'myaccount',
    });
    expect(config.serviceBus.fullyQualifiedNamespace).toBe('my-namespace.servicebus.windows.net');
    expect(config.storageQueue.accountUrl).toBe('https://myaccount.queue.core.windows.net');
    const explicit = configFromEnv({
      SERVICE_BUS_NAMESPACE: 'sb://my-namespace.servicebus.windows.net/',
      STORAGE_ACCOUNT_URL: 'http://127.0.0.1:10001/devstoreaccount1',
    });
    expect(explicit.serviceBus.fullyQualifiedNamespace).toBe('my-namespace.servicebus.windows.net');
    expect(explicit.storageQueue.accountUrl).toBe('http://127.0.0.1:10001/devstoreaccount1');
  });

  it('reads the priority lanes switches (default off) and names a malformed one', () => {
    const off = configFromEnv({});
    expect([off.serviceBus.priorityLanes, off.storageQueue.priorityLanes]).toEqual([false, false]);
    const on = configFromEnv({ SERVICE_BUS_PRIORITY_LANES: 'true', STORAGE_PRIORITY_LANES: '1' });
    expect([on.serviceBus.priorityLanes, on.storageQueue.priorityLanes]).toEqual([true, true]);
    expect(configError({ STORAGE_PRIORITY_LANES: 'sometimes' }).issues).toEqual([
      expect.objectContaining({ path: 'STORAGE_PRIORITY_LANES' }),
    ]);
  });

  it('reports every missing or malformed variable at once, by name, without values', () => {
    const err = configError({
      ENABLE_SERVICE_BUS: 'yes please',
      SERVICE_BUS_CONNECTION_STRING: 'not-a-connection-string-SECRETISH',
      ENABLE_STORAGE_QUEUE: 'true',
      STORAGE_JOB_QUEUE: 'Bad_Queue',
      DATABASE_URL: 'mysql://root:HiddenPw@db/app',
      DATABASE_SCHEMA: 'drop table;',
      KEY_VAULT_URL: 'not a url',
      SWITCHYARD_DEFAULT_TRANSPORT: 'carrier-pigeon',
      SWITCHYARD_API_KEY: 'kQz9w',
    });
    expect(err.code).toBe('CONFIG_ERROR');
    expect(err.issues?.map((i) => i.path).sort()).toEqual(
      [
        'DATABASE_SCHEMA',
        'DATABASE_URL',
        'ENABLE_SERVICE_BUS',
        'ENABLE_STORAGE_QUEUE',
        'KEY_VAULT_URL',
        'SERVICE_BUS_CONNECTION_STRING',
        'STORAGE_JOB_QUEUE',
        'SWITCHYARD_API_KEY',
        'SWITCHYARD_DEFAULT_TRANSPORT',
      ].sort(),
    );
    const text = `${err.message} ${JSON.stringify(err)} ${inspect(err)}`;
    for (const value of ['SECRETISH', 'HiddenPw', 'carrier-pigeon', 'kQz9w']) {
      expect(text).not.toContain(value);
    }
    expect(err.message).toContain('SERVICE_BUS_CONNECTION_STRING');
  });

  it('numeric variables: empty or blank is unset (the default), never 0; garbage is named', () => {
    for (const blank of ['', '  ']) {
      const config = configFromEnv({
        SERVICE_BUS_MAX_DELIVERY_COUNT: blank,
        STORAGE_MAX_DEQUEUE_COUNT: blank,
      });
      expect(config.serviceBus.maxDeliveryCount).toBe(10);
      expect(config.storageQueue.maxDequeueCount).toBe(5);
    }
    const set = configFromEnv({
      SERVICE_BUS_MAX_DELIVERY_COUNT: ' 3 ',
      STORAGE_MAX_DEQUEUE_COUNT: '7',
    });
    expect([set.serviceBus.maxDeliveryCount, set.storageQueue.maxDequeueCount]).toEqual([3, 7]);
    for (const bad of ['abc', '-1', '1.5', '0', '1e3', '0x10', '99999']) {
      const err = configError({
        SERVICE_BUS_MAX_DELIVERY_COUNT: bad,
        STORAGE_MAX_DEQUEUE_COUNT: bad,
      });
      expect(err.issues, bad).toEqual([
        { path: 'SERVICE_BUS_MAX_DELIVERY_COUNT', message: 'must be an integer from 1 to 2000' },
        { path: 'STORAGE_MAX_DEQUEUE_COUNT', message: 'must be an integer from 1 to 1000' },
      ]);
      expect(err.message).toContain('SERVICE_BUS_MAX_DELIVERY_COUNT must be an integer');
    }
  });

  it('requires a namespace or connection string when a transport is enabled', () => {
    const err = configError({
      ENABLE_SERVICE_BUS: 'true',
      SWITCHYARD_DEFAULT_TRANSPORT: 'storagequeue',
    });
    expect(err.issues).toEqual([
      { path: 'ENABLE_SERVICE_BUS', message: expect.stringContaining('SERVICE_BUS_NAMESPACE') },
      {
        path: 'SWITCHYARD_DEFAULT_TRANSPORT',
        message: expect.stringContaining('ENABLE_STORAGE_QUEUE'),
      },
    ]);
  });

  it('rejects a *_SECRET variable without KEY_VAULT_URL, and a value plus a secret', () => {
    const err = configError({
      DATABASE_SECRET: 'db-url',
      SERVICE_BUS_CONNECTION_STRING: SB,
      SERVICE_BUS_CONNECTION_SECRET: 'sb-conn',
    });
    expect(err.issues?.map((i) => i.path)).toEqual([
      'SERVICE_BUS_CONNECTION_SECRET',
      'DATABASE_SECRET',
    ]);
  });

  it('never shows secret values when printed', () => {
    const config = configFromEnv({
      SERVICE_BUS_CONNECTION_STRING: SB,
      STORAGE_CONNECTION_STRING: STORAGE,
      DATABASE_URL: DB,
      SWITCHYARD_API_KEY: API_KEY,
      STORAGE_ACCOUNT_URL: 'https://acct.queue.core.windows.net/?sv=2022&sig=SasSig456',
    });
    const printed = [
      JSON.stringify(config),
      inspect(config, { depth: 10 }),
      inspect(config, { depth: 10, showHidden: true }),
      JSON.stringify(config.serviceBus),
      inspect(config.storageQueue),
      inspect(config.database),
      String(config),
    ].join('\n');
    for (const secret of ['SbKeyAbc123', 'StKeyXyz789', 'DbPassw0rd', API_KEY, 'SasSig456']) {
      expect(printed).not.toContain(secret);
    }
    expect(printed).toContain('[secret]');
    expect(JSON.parse(JSON.stringify(config))).toMatchObject({
      serviceBus: { connectionString: '[secret]', jobQueue: 'sb-jobs' },
      database: { url: '[secret]', schema: 'switchyard' },
      apiKey: '[secret]',
      secrets: 'env',
    });
    // The values are still there for drivers.
    expect(config.database.url).toBe(DB);
  });

  describe('with KEY_VAULT_URL', () => {
    const azure = fakeAzure();
    beforeAll(() => azure.server.listen({ onUnhandledRequest: 'error' }));
    afterEach(() => azure.reset());
    afterAll(() => azure.server.close());

    it('returns Key Vault references that resolve through env first, then the vault', async () => {
      azure.secrets.set('db-url', DB);
      const credential = new ClientSecretCredential(TENANT, CLIENT_ID, CLIENT_SECRET);
      const config = configFromEnv(
        {
          KEY_VAULT_URL: VAULT_URL,
          DATABASE_SECRET: 'db-url',
          SERVICE_BUS_CONNECTION_SECRET: 'sb-conn',
          SB_CONN: SB,
        },
        { credential },
      );
      expect(config.keyVaultUrl).toBe(VAULT_URL);
      expect(config.secrets.name).toBe(`firstOf(env, keyvault(${VAULT_URL}))`);
      expect(isSecretRef(config.database.url)).toBe(true);
      expect(JSON.parse(JSON.stringify(config.database))).toEqual({
        url: { secret: 'db-url', source: config.secrets.name },
        schema: 'switchyard',
      });
      const url = config.database.url;
      if (!isSecretRef(url)) throw new Error('expected a reference');
      expect(await cachedSecret(url).get()).toBe(DB);
      expect(azure.counts.vaultGets).toBe(1);
      // A variable overrides the vault (local development with the production config).
      const sb = config.serviceBus.connectionString;
      if (!isSecretRef(sb)) throw new Error('expected a reference');
      expect(await cachedSecret(sb).get()).toBe(SB);
      expect(azure.counts.vaultGets).toBe(1);
    });
  });
});
