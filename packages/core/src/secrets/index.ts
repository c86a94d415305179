export {
  type CachedSecret,
  type CachedSecretOptions,
  cachedSecret,
  toCachedSecret,
  withSecretRotation,
} from './cached.js';
export { knownSecretValues, redactSecrets, rememberSecretValue } from './redact.js';
export { SecretValue } from './secret-value.js';
export {
  defaultEnvVariable,
  type EnvSecretsOptions,
  envSecrets,
  firstOf,
  isSecretRef,
  type SecretInput,
} from './sources.js';
export type { SecretRef, SecretSource } from './types.js';
