/**
 * Azure credentials, Key Vault secrets and environment configuration shared by Switchyard's
 * Service Bus, Storage Queue and PostgreSQL drivers.
 * @module
 */

export {
  type AzureEnvConfig,
  type ConfigFromEnvOptions,
  configError,
  configFromEnv,
  type DatabaseEnvConfig,
  type ServiceBusEnvConfig,
  type StorageQueueEnvConfig,
  TRANSPORT_NAMES,
  type TransportName,
} from './config.js';
export {
  type ConnectionOptions,
  type ConnectionSource,
  type EndpointOption,
  resolveConnectionSource,
} from './connection.js';
export {
  type AzureCredentialOptions,
  azureCredential,
  type TokenCredential,
} from './credential.js';
export {
  type KeyVaultSecretReader,
  type KeyVaultSecretsOptions,
  keyVaultSecrets,
} from './keyvault.js';
