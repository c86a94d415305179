import type { TokenCredential } from '@azure/identity';
import {
  type GetSecretOptions,
  SecretClient,
  type SecretClientOptions,
} from '@azure/keyvault-secrets';
import { type SecretSource, SwitchyardError } from '@switchyard/core';
import { redactSecrets } from '@switchyard/core/driver';
import { azureCredential } from './credential.js';

/** The part of `SecretClient` that {@link keyVaultSecrets} uses (lets tests or callers supply their own). */
export type KeyVaultSecretReader = Pick<SecretClient, 'getSecret'>;

/** Options of {@link keyVaultSecrets}. */
export interface KeyVaultSecretsOptions {
  /** e.g. `https://my-vault.vault.azure.net`. */
  vaultUrl: string;
  /** Defaults to {@link azureCredential}() (a shared `DefaultAzureCredential`). */
  credential?: TokenCredential;
  /** A ready `SecretClient`; `credential`, `retryOptions` and `clientOptions` are then ignored. */
  client?: KeyVaultSecretReader;
  /**
   * Retries of throttled (429, honouring `Retry-After`) and transient failures.
   * Default `{ maxRetries: 4, retryDelayInMs: 500, maxRetryDelayInMs: 10_000 }`.
   */
  retryOptions?: SecretClientOptions['retryOptions'];
  /** Any other `SecretClient` options (merged over Switchyard's defaults). */
  clientOptions?: SecretClientOptions;
  /**
   * Maps a Switchyard secret name to a Key Vault secret name. Key Vault names allow only
   * `0-9a-zA-Z-`; default replaces every other character with `-` (`db_url` → `db-url`).
   */
  toSecretName?: (name: string) => string;
}

/** Start-up lookups should not stall a Functions cold start for minutes, nor give up on one 429. */
const DEFAULT_RETRY: NonNullable<SecretClientOptions['retryOptions']> = {
  maxRetries: 4,
  retryDelayInMs: 500,
  maxRetryDelayInMs: 10_000,
};

function defaultSecretName(name: string): string {
  return name.replace(/[^0-9a-zA-Z-]/g, '-');
}

function statusOf(err: unknown): number | undefined {
  // Duck-typed: the SDK bundles its own copy of core-rest-pipeline, so `instanceof RestError` is unreliable.
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * A {@link SecretSource} reading the latest version of secrets from Azure Key Vault.
 *
 * - a secret the vault does not hold (404) → `undefined`, so `firstOf(...)` falls through and
 *   `cachedSecret` reports `SECRET_NOT_FOUND` naming the secret and this vault;
 * - 401/403 → `SwitchyardError` `AUTH_FAILED` (the identity lacks `get` permission or the
 *   credential failed); other failures → `BACKEND_ERROR`; both with the SDK error as `cause`;
 * - throttling (429) and transient errors are retried by the SDK per `retryOptions`.
 */
export function keyVaultSecrets(options: KeyVaultSecretsOptions): SecretSource {
  const vaultUrl = options.vaultUrl.replace(/\/+$/, '');
  const toSecretName = options.toSecretName ?? defaultSecretName;
  const name = `keyvault(${vaultUrl})`;
  let client = options.client;
  // Built lazily: constructing a source (e.g. in configFromEnv) must not require a credential yet.
  const getClient = (): KeyVaultSecretReader => {
    client ??= new SecretClient(vaultUrl, options.credential ?? azureCredential(), {
      ...options.clientOptions,
      retryOptions: {
        ...DEFAULT_RETRY,
        ...options.clientOptions?.retryOptions,
        ...options.retryOptions,
      },
    });
    return client;
  };

  return {
    name,
    async getSecret(secretName, opts = {}) {
      const vaultName = toSecretName(secretName);
      const getOptions: GetSecretOptions = {};
      if (opts.abortSignal) getOptions.abortSignal = opts.abortSignal;
      try {
        const secret = await getClient().getSecret(vaultName, getOptions);
        return secret.value;
      } catch (err) {
        const status = statusOf(err);
        if (status === 404) return undefined;
        const where = `secret "${secretName}" in ${name}`;
        if (opts.abortSignal?.aborted) {
          throw new SwitchyardError('ABORTED', `reading ${where} was aborted`, { cause: err });
        }
        if (status === 401 || status === 403) {
          throw new SwitchyardError(
            'AUTH_FAILED',
            `not allowed to read ${where} (HTTP ${status}); grant the identity the "Key Vault Secrets User" role`,
            { cause: err },
          );
        }
        const detail = err instanceof Error ? redactSecrets(err.message) : 'unknown error';
        // Credential failures (no managed identity, not logged in, rejected client) have no HTTP status;
        // identity names them CredentialUnavailableError / Authentication(Required|Aggregate)Error.
        const code =
          err instanceof Error && /CredentialUnavailable|Authentication/.test(err.name)
            ? 'AUTH_FAILED'
            : 'BACKEND_ERROR';
        throw new SwitchyardError(
          code,
          `could not read ${where}${status ? ` (HTTP ${status})` : ''}: ${detail}`,
          { cause: err },
        );
      }
    },
  };
}
