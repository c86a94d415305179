import { ClientSecretCredential, DefaultAzureCredential } from '@azure/identity';
import { isSwitchyardError, type SwitchyardError } from '@switchyard/core';
import { cachedSecret, withSecretRotation } from '@switchyard/core/driver';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { azureCredential, keyVaultSecrets } from '../src/index.js';
import { CLIENT_ID, CLIENT_SECRET, fakeAzure, TENANT, VAULT_URL } from './mock-azure.js';

const azure = fakeAzure();
beforeAll(() => azure.server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => {
  azure.server.resetHandlers();
  azure.reset();
});
afterAll(() => azure.server.close());

function credential() {
  return new ClientSecretCredential(TENANT, CLIENT_ID, CLIENT_SECRET);
}

function vault() {
  return keyVaultSecrets({ vaultUrl: VAULT_URL, credential: credential() });
}

async function caught(promise: Promise<unknown>): Promise<SwitchyardError> {
  try {
    await promise;
  } catch (err) {
    if (isSwitchyardError(err)) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('keyVaultSecrets', () => {
  it('resolves a secret through the challenge, a token, and one GET; cachedSecret reuses it', async () => {
    azure.secrets.set(
      'servicebus-connection',
      'Endpoint=sb://ns/;SharedAccessKeyName=k;SharedAccessKey=v1',
    );
    const secret = cachedSecret({ secret: 'servicebus-connection', source: vault() });
    const values = await Promise.all(Array.from({ length: 10 }, () => secret.get()));
    for (let i = 0; i < 10; i++) values.push(await secret.get());
    expect(new Set(values)).toEqual(
      new Set(['Endpoint=sb://ns/;SharedAccessKeyName=k;SharedAccessKey=v1']),
    );
    expect(azure.counts.vaultGets).toBe(1);
    expect(azure.counts.challenges).toBe(1);
    expect(azure.counts.token).toBe(1);
  });

  it('looks the secret up again once the TTL has passed', async () => {
    azure.secrets.set('db-url', 'postgres://app:pw-one@db/app');
    let t = 0;
    const secret = cachedSecret(
      { secret: 'db-url', source: vault() },
      { ttlMs: 60_000, now: () => t },
    );
    expect(await secret.get()).toBe('postgres://app:pw-one@db/app');
    azure.secrets.set('db-url', 'postgres://app:pw-two@db/app');
    t = 59_999;
    expect(await secret.get()).toBe('postgres://app:pw-one@db/app');
    expect(azure.counts.vaultGets).toBe(1);
    t = 60_000;
    expect(await secret.get()).toBe('postgres://app:pw-two@db/app');
    expect(azure.counts.vaultGets).toBe(2);
  });

  it('refreshes a rotated secret once after an auth failure and succeeds', async () => {
    azure.secrets.set('storage-key', 'old-account-key');
    const secret = cachedSecret({ secret: 'storage-key', source: vault() });
    expect(await secret.get()).toBe('old-account-key');
    azure.secrets.set('storage-key', 'new-account-key'); // rotated in the vault
    const authError = (err: unknown) => (err as { statusCode?: number }).statusCode === 403;
    const tried: string[] = [];
    const result = await withSecretRotation(
      secret,
      async (value) => {
        tried.push(value);
        if (value !== 'new-account-key')
          throw Object.assign(new Error('forbidden'), { statusCode: 403 });
        return 'sent';
      },
      authError,
    );
    expect(result).toBe('sent');
    expect(tried).toEqual(['old-account-key', 'new-account-key']);
    expect(azure.counts.vaultGets).toBe(2);
    expect(await secret.get()).toBe('new-account-key');
    expect(azure.counts.vaultGets).toBe(2);
  });

  it('turns a 404 into undefined, and cachedSecret into SECRET_NOT_FOUND naming secret and vault', async () => {
    const source = vault();
    expect(await source.getSecret('nope')).toBeUndefined();
    const err = await caught(cachedSecret({ secret: 'nope', source }).get());
    expect(err.code).toBe('SECRET_NOT_FOUND');
    expect(err.message).toContain('"nope"');
    expect(err.message).toContain(VAULT_URL);
  });

  it('retries a throttled read (429, Retry-After: 0) and then succeeds', async () => {
    azure.secrets.set('api-key', 'api-key-value-0123456789');
    azure.throttle(2);
    const started = Date.now();
    expect(await vault().getSecret('api-key')).toBe('api-key-value-0123456789');
    expect(azure.counts.vaultGets).toBe(3);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('gives up on throttling after the configured retries', async () => {
    azure.secrets.set('api-key', 'api-key-value-0123456789');
    azure.throttle(10);
    const source = keyVaultSecrets({
      vaultUrl: VAULT_URL,
      credential: credential(),
      retryOptions: { maxRetries: 1 },
    });
    const err = await caught(source.getSecret('api-key'));
    expect(err.code).toBe('BACKEND_ERROR');
    expect(err.message).toContain('429');
    expect(azure.counts.vaultGets).toBe(2);
  });

  it('maps 403 to AUTH_FAILED naming the secret and vault', async () => {
    azure.secrets.set('db-url', 'postgres://app:pw@db/app');
    azure.deny(403);
    const err = await caught(vault().getSecret('db-url'));
    expect(err.code).toBe('AUTH_FAILED');
    expect(err.message).toContain('"db-url"');
    expect(err.message).toContain(VAULT_URL);
    expect(err.cause).toBeDefined();
  });

  it('maps a credential that cannot get a token to AUTH_FAILED', async () => {
    const source = keyVaultSecrets({
      vaultUrl: VAULT_URL,
      credential: new ClientSecretCredential(TENANT, CLIENT_ID, 'wrong-secret'),
      retryOptions: { maxRetries: 0 },
    });
    const err = await caught(source.getSecret('db-url'));
    expect(err.code).toBe('AUTH_FAILED');
    expect(err.message).not.toContain('wrong-secret');
  });

  it('maps secret names to Key Vault names and accepts a ready client', async () => {
    azure.secrets.set('db-url', 'postgres://x:y@h/d');
    expect(await vault().getSecret('db_url')).toBe('postgres://x:y@h/d');
    const names: string[] = [];
    const source = keyVaultSecrets({
      vaultUrl: `${VAULT_URL}/`,
      client: {
        getSecret: async (name) => {
          names.push(name);
          return { name, value: 'v', properties: { name, vaultUrl: VAULT_URL } };
        },
      },
    });
    expect(source.name).toBe(`keyvault(${VAULT_URL})`);
    expect(await source.getSecret('a.b')).toBe('v');
    expect(names).toEqual(['a-b']);
  });
});

describe('azureCredential', () => {
  it('returns the given credential, else one shared DefaultAzureCredential', () => {
    const given = credential();
    expect(azureCredential({ credential: given })).toBe(given);
    const shared = azureCredential();
    expect(shared).toBeInstanceOf(DefaultAzureCredential);
    expect(azureCredential()).toBe(shared);
    const user = azureCredential({ managedIdentityClientId: CLIENT_ID });
    expect(user).toBeInstanceOf(DefaultAzureCredential);
    expect(user).not.toBe(shared);
  });
});
