/**
 * Reads Switchyard's configuration from the environment, resolves every secret it names
 * (from variables, or from Key Vault when KEY_VAULT_URL is set), and prints the configuration
 * with secrets masked. Exits 1 with every problem listed if the environment is wrong.
 *
 *   node --conditions=@switchyard/source --import tsx packages/azure/examples/print-config.ts
 */
import { isSwitchyardError, type SecretInput } from '@switchyard/core';
import { toCachedSecret } from '@switchyard/core/driver';
import { configFromEnv } from '../src/index.js';

async function main(): Promise<void> {
  const config = configFromEnv();
  console.log('configuration:', config);

  const inputs: Array<[string, SecretInput | undefined]> = [
    ['serviceBus.connectionString', config.serviceBus.connectionString],
    ['storageQueue.connectionString', config.storageQueue.connectionString],
    ['database.url', config.database.url],
    ['apiKey', config.apiKey],
  ];
  for (const [label, input] of inputs) {
    if (input === undefined) continue;
    const secret = toCachedSecret(input, { defaultSource: config.secrets, label });
    const value = await secret.get();
    // Show that it resolved, never what it is.
    console.log(`${label}: resolved (${value.length} characters)`);
  }
}

main().catch((err: unknown) => {
  if (isSwitchyardError(err)) {
    console.error(`${err.code}: ${err.message}`);
    for (const issue of err.issues ?? []) console.error(`  ${issue.path}: ${issue.message}`);
  } else {
    console.error(err);
  }
  process.exitCode = 1;
});
