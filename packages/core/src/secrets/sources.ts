import type { SecretRef, SecretSource } from './types.js';

/** A value or a reference, as driver options accept it: `connectionString: string | SecretRef`. */
export type SecretInput = string | SecretRef;

/** Options of {@link envSecrets}. */
export interface EnvSecretsOptions {
  /** Variables to read; defaults to `process.env`. */
  env?: Record<string, string | undefined>;
  /**
   * Maps a secret name to a variable name. Default: upper-case, every non-alphanumeric
   * character to `_` (`servicebus-connection` → `SERVICEBUS_CONNECTION`).
   */
  toVariable?: (name: string) => string;
}

/** Default secret-name → environment-variable mapping used by {@link envSecrets}. */
export function defaultEnvVariable(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/**
 * A {@link SecretSource} reading environment variables. An unset or empty variable counts as
 * missing, so `firstOf(envSecrets(), vault)` falls through to the vault.
 */
export function envSecrets(options: EnvSecretsOptions = {}): SecretSource {
  const toVariable = options.toVariable ?? defaultEnvVariable;
  // Read process.env lazily so tests and hosts that set variables after start-up are honoured.
  const env = (): Record<string, string | undefined> =>
    options.env ??
    (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ??
    {};
  return {
    name: 'env',
    async getSecret(name) {
      const value = env()[toVariable(name)];
      return value === undefined || value === '' ? undefined : value;
    },
  };
}

/**
 * A {@link SecretSource} asking each source in turn and returning the first value found.
 * A source that throws (unreachable, forbidden) stops the search: falling through on errors
 * would silently pick a stale fallback.
 */
export function firstOf(...sources: SecretSource[]): SecretSource {
  return {
    name: `firstOf(${sources.map((s) => s.name).join(', ')})`,
    async getSecret(name, options) {
      for (const source of sources) {
        const value = await source.getSecret(name, options);
        if (value !== undefined) return value;
      }
      return undefined;
    },
  };
}

/** True for a {@link SecretRef} (`{ secret: 'name', source? }`), false for a plain string value. */
export function isSecretRef(value: unknown): value is SecretRef {
  if (typeof value !== 'object' || value === null) return false;
  const { secret, source } = value as { secret?: unknown; source?: unknown };
  if (typeof secret !== 'string' || secret === '') return false;
  return (
    source === undefined ||
    (typeof source === 'object' &&
      source !== null &&
      typeof (source as { getSecret?: unknown }).getSecret === 'function')
  );
}
