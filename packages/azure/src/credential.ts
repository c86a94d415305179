import {
  DefaultAzureCredential,
  type DefaultAzureCredentialClientIdOptions,
  type TokenCredential,
} from '@azure/identity';

export type { TokenCredential } from '@azure/identity';

/** Options of {@link azureCredential}. */
export interface AzureCredentialOptions {
  /** Use this credential as is (e.g. a `ClientSecretCredential`, or a test double). */
  credential?: TokenCredential;
  /** Client id of a user-assigned managed identity (otherwise `AZURE_CLIENT_ID` or system-assigned). */
  managedIdentityClientId?: string;
  /** Entra ID tenant to authenticate in. */
  tenantId?: string;
}

let shared: DefaultAzureCredential | undefined;

/**
 * The credential every Switchyard Azure driver uses in namespace/account-URL mode:
 * `options.credential` if given, otherwise a `DefaultAzureCredential` (managed identity in
 * Azure, `az login` / VS Code / environment variables locally).
 *
 * Called without options it returns one process-wide instance, so Service Bus, Storage and
 * Key Vault share one token cache instead of each fetching its own tokens.
 */
export function azureCredential(options: AzureCredentialOptions = {}): TokenCredential {
  if (options.credential) return options.credential;
  if (options.managedIdentityClientId === undefined && options.tenantId === undefined) {
    shared ??= new DefaultAzureCredential();
    return shared;
  }
  const dacOptions: DefaultAzureCredentialClientIdOptions = {};
  if (options.managedIdentityClientId !== undefined) {
    dacOptions.managedIdentityClientId = options.managedIdentityClientId;
  }
  if (options.tenantId !== undefined) dacOptions.tenantId = options.tenantId;
  return new DefaultAzureCredential(dacOptions);
}
