import { format, inspect } from 'node:util';
import { ClientSecretCredential } from '@azure/identity';
import { AzureLogger, getLogLevel, setLogLevel } from '@azure/logger';
import {
  cachedSecret,
  isSecretRef,
  redactSecrets,
  withSecretRotation,
} from '@switchyard/core/driver';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { configFromEnv, keyVaultSecrets } from '../src/index.js';
import { CLIENT_ID, CLIENT_SECRET, fakeAzure, TENANT, VAULT_URL } from './mock-azure.js';

/** Values that must never show up in a log line or an error. */
const SB_KEY = 'SbLeakKey0000111122223333+/=';
const SB = `Endpoint=sb://leak-ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=${SB_KEY}`;
const DB_PASSWORD = 'DbLeakPassw0rd-4455';
const DB = `postgres://app:${DB_PASSWORD}@db.example.com/app`;
const ROTATED = 'RotatedLeakValue-667788';
const API_KEY = 'ApiLeakKey-99aabbccddeeff';

describe('secrets never leak into logs or errors', () => {
  const azure = fakeAzure();
  const logged: string[] = [];
  const errors: unknown[] = [];
  const previousLevel = getLogLevel();
  const previousLog = AzureLogger.log;

  beforeAll(() => {
    azure.server.listen({ onUnhandledRequest: 'error' });
    setLogLevel('verbose');
    AzureLogger.log = (...args: unknown[]) => {
      logged.push(format(...args));
    };
    for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        logged.push(format(...args));
      });
    }
  });

  afterAll(() => {
    vi.restoreAllMocks();
    AzureLogger.log = previousLog;
    setLogLevel(previousLevel);
    azure.server.close();
  });

  async function capture(promise: Promise<unknown>): Promise<void> {
    try {
      await promise;
    } catch (err) {
      errors.push(err);
    }
  }

  it('exercises every path with verbose Azure SDK logging', async () => {
    const credential = new ClientSecretCredential(TENANT, CLIENT_ID, CLIENT_SECRET);
    azure.secrets.set('servicebus-connection', SB);
    azure.secrets.set('db-url', DB);
    azure.secrets.set('api-key', API_KEY);

    const config = configFromEnv(
      {
        KEY_VAULT_URL: VAULT_URL,
        SERVICE_BUS_CONNECTION_SECRET: 'servicebus-connection',
        DATABASE_SECRET: 'db-url',
        SWITCHYARD_API_KEY_SECRET: 'api-key',
        ENABLE_SERVICE_BUS: 'true',
      },
      { credential },
    );
    console.log('config', config);
    console.log(JSON.stringify(config));

    // Resolve and cache, across TTL expiry.
    let t = 0;
    for (const input of [config.serviceBus.connectionString, config.database.url, config.apiKey]) {
      if (!isSecretRef(input)) throw new Error('expected a reference');
      const secret = cachedSecret(input, { ttlMs: 10, now: () => t });
      await secret.get();
      t += 20;
      await secret.get();
      console.log('secret holder', secret);
    }

    // Rotation: the old value is refused, the new one works.
    const sb = cachedSecret({ secret: 'servicebus-connection', source: config.secrets });
    await sb.get();
    azure.secrets.set('servicebus-connection', ROTATED);
    const refused = (value: string) =>
      Object.assign(new Error(`401 Unauthorized for ${redactSecrets(value)}`), { status: 401 });
    const isAuth = (err: unknown) => (err as { status?: number }).status === 401;
    await withSecretRotation(
      sb,
      async (value) => {
        if (value !== ROTATED) throw refused(value);
        return 'ok';
      },
      isAuth,
    );
    // Rotation that keeps failing.
    await capture(withSecretRotation(sb, async (value) => Promise.reject(refused(value)), isAuth));

    // Missing, throttled, forbidden, bad client.
    await capture(cachedSecret({ secret: 'missing', source: config.secrets }).get());
    azure.throttle(20);
    await capture(
      keyVaultSecrets({
        vaultUrl: VAULT_URL,
        credential,
        retryOptions: { maxRetries: 1 },
      }).getSecret('db-url'),
    );
    azure.reset();
    azure.secrets.set('db-url', DB);
    azure.deny(403);
    await capture(keyVaultSecrets({ vaultUrl: VAULT_URL, credential }).getSecret('db-url'));
    azure.deny(undefined);
    await capture(
      keyVaultSecrets({
        vaultUrl: VAULT_URL,
        credential: new ClientSecretCredential(TENANT, CLIENT_ID, `${CLIENT_SECRET}-wrong`),
      }).getSecret('db-url'),
    );

    // Configuration errors for values given directly.
    try {
      configFromEnv({
        ENABLE_SERVICE_BUS: 'maybe',
        SERVICE_BUS_CONNECTION_STRING: `Endpoint=http://x/;SharedAccessKey=${SB_KEY}`,
        DATABASE_URL: `mysql://app:${DB_PASSWORD}@db/app`,
        SWITCHYARD_API_KEY: API_KEY,
        SWITCHYARD_API_KEY_SECRET: 'api-key',
      });
    } catch (err) {
      errors.push(err);
    }

    expect(errors.length).toBe(6);
    // The capture really saw things: verbose SDK logging, the printed config, the errors.
    expect(logged.filter((line) => line.includes('azure:')).length).toBeGreaterThan(10);
    expect(logged.some((line) => line.includes("secret: 'db-url'"))).toBe(true);
    expect(logged.some((line) => line.includes('sy-test-vault.vault.azure.net'))).toBe(true);
  });

  it('finds no secret value in anything captured', () => {
    const texts = [
      ...logged,
      ...errors.flatMap((err) => [
        String(err),
        JSON.stringify(err),
        inspect(err, { depth: 20, showHidden: false }),
        (err as Error).stack ?? '',
      ]),
    ];
    const secrets = [SB_KEY, SB, DB_PASSWORD, ROTATED, API_KEY, CLIENT_SECRET, ...tokens()];
    for (const secret of secrets) {
      const hits = texts.filter((text) => text.includes(secret));
      expect(hits, `found ${secret}`).toEqual([]);
    }
  });

  /** Access tokens the fake issued (they are secrets too). */
  function tokens(): string[] {
    return Array.from({ length: 20 }, (_, i) => `fake-access-token-${i + 1}`);
  }
});
