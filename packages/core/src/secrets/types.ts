/**
 * Where drivers get connection strings and passwords from. `@switchyard/core` ships
 * `envSecrets()` and `firstOf(...)`; `@switchyard/azure` ships `keyVaultSecrets(...)`.
 * @module
 */

/** A source of named secrets (environment variables, Azure Key Vault, …). */
export interface SecretSource {
  /** Human-readable name used in error messages, e.g. `env` or `keyvault(https://x.vault.azure.net)`. */
  readonly name: string;
  /**
   * Returns the secret's current value, or `undefined` if this source does not hold it.
   * Throws on any other failure (unreachable, forbidden).
   */
  getSecret(name: string, options?: { abortSignal?: AbortSignal }): Promise<string | undefined>;
}

/**
 * A reference to a secret, accepted wherever a driver accepts a connection string or password:
 * `{ secret: 'servicebus-connection' }` resolves through the driver's (or the default) source.
 */
export interface SecretRef {
  secret: string;
  /** Where to resolve it; defaults to the driver's `secrets` option, then `envSecrets()`. */
  source?: SecretSource;
}
