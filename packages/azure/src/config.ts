import type { TokenCredential } from '@azure/identity';
import {
  envSecrets,
  type FieldIssue,
  type SecretInput,
  type SecretSource,
  SwitchyardError,
} from '@switchyard/core';
import { firstOf, isSecretRef, redactSecrets } from '@switchyard/core/driver';
import { keyVaultSecrets } from './keyvault.js';

/** Transports `SWITCHYARD_DEFAULT_TRANSPORT` may name. */
export const TRANSPORT_NAMES = ['servicebus', 'storagequeue', 'postgres', 'memory'] as const;
/** A transport `SWITCHYARD_DEFAULT_TRANSPORT` may name. */
export type TransportName = (typeof TRANSPORT_NAMES)[number];

/** Azure Service Bus settings (`SERVICE_BUS_*`, `ENABLE_SERVICE_BUS`). */
export interface ServiceBusEnvConfig {
  /** `ENABLE_SERVICE_BUS` (default `false`). */
  enabled: boolean;
  /**
   * `SERVICE_BUS_NAMESPACE` as a fully qualified host (`my-ns` → `my-ns.servicebus.windows.net`),
   * for credential mode with {@link azureCredential}.
   */
  fullyQualifiedNamespace?: string;
  /** `SERVICE_BUS_CONNECTION_STRING`, or a Key Vault reference from `SERVICE_BUS_CONNECTION_SECRET`. */
  connectionString?: SecretInput;
  /** `SERVICE_BUS_JOB_QUEUE` (default `sb-jobs`). */
  jobQueue: string;
  /** `SERVICE_BUS_TASK_QUEUE` (default `sb-tasks`). */
  taskQueue: string;
  /**
   * `SERVICE_BUS_MAX_DELIVERY_COUNT`: the queues' max delivery count, for hosts whose trigger
   * settles messages itself (Azure Functions) and must know the last delivery (default 10, the
   * Service Bus default).
   */
  maxDeliveryCount: number;
  /**
   * `SERVICE_BUS_PRIORITY_LANES` (default `false`): the task queue's priority lanes,
   * `<task>-high` and `<task>-low` beside it (queues to create on the namespace).
   */
  priorityLanes: boolean;
}

/** Azure Storage Queue settings (`STORAGE_*`, `AzureWebJobsStorage`, `ENABLE_STORAGE_QUEUE`). */
export interface StorageQueueEnvConfig {
  /** `ENABLE_STORAGE_QUEUE` (default `false`). */
  enabled: boolean;
  /**
   * `STORAGE_CONNECTION_STRING`, else `AzureWebJobsStorage` (the Functions host's storage), or a
   * Key Vault reference from `STORAGE_CONNECTION_SECRET`.
   */
  connectionString?: SecretInput;
  /**
   * `STORAGE_ACCOUNT_URL` (e.g. `https://acct.queue.core.windows.net`), else
   * `AzureWebJobsStorage__queueServiceUri`, else one built from `AzureWebJobsStorage__accountName`
   * (Functions identity-based connections), for credential mode.
   */
  accountUrl?: string;
  /**
   * The variable the connection string was read from: `STORAGE_CONNECTION_STRING` when it is set,
   * else `AzureWebJobsStorage` — what an Azure Functions queue trigger names as its `connection`.
   */
  connectionSetting: 'STORAGE_CONNECTION_STRING' | 'AzureWebJobsStorage';
  /** `STORAGE_JOB_QUEUE` (default `sq-jobs`). */
  jobQueue: string;
  /** `STORAGE_TASK_QUEUE` (default `sq-tasks`). */
  taskQueue: string;
  /**
   * `STORAGE_MAX_DEQUEUE_COUNT`: deliveries before a host moves a message to `<queue>-poison`, for
   * hosts that settle messages themselves (Azure Functions' `queues.maxDequeueCount`; default 5).
   */
  maxDequeueCount: number;
  /**
   * `STORAGE_PRIORITY_LANES` (default `false`): the task queue's priority lanes, `<task>-high` and
   * `<task>-low` beside it.
   */
  priorityLanes: boolean;
}

/** PostgreSQL settings. */
export interface DatabaseEnvConfig {
  /** `DATABASE_URL`, or a Key Vault reference from `DATABASE_SECRET`. */
  url?: SecretInput;
  /** `DATABASE_SCHEMA` (default `switchyard`). */
  schema: string;
}

/**
 * Switchyard configuration read from environment variables by {@link configFromEnv}.
 *
 * Secret values (connection strings, database URL, API key) are {@link SecretInput}s: the string
 * itself when given in a variable, or `{ secret, source }` when a `*_SECRET` variable names a Key
 * Vault secret. Pass them straight to driver options; drivers resolve references through
 * `cachedSecret`. `JSON.stringify` and `util.inspect` of this object (or any section of it) show
 * `[secret]` instead of secret values.
 */
export interface AzureEnvConfig {
  serviceBus: ServiceBusEnvConfig;
  storageQueue: StorageQueueEnvConfig;
  database: DatabaseEnvConfig;
  /** `KEY_VAULT_URL`; when set, `*_SECRET` variables name secrets in this vault. */
  keyVaultUrl?: string;
  /** `SWITCHYARD_DEFAULT_TRANSPORT`: the transport a job uses when it names none. */
  defaultTransport?: TransportName;
  /** `SWITCHYARD_API_KEY`, or a Key Vault reference from `SWITCHYARD_API_KEY_SECRET`: the HTTP API key. */
  apiKey?: SecretInput;
  /**
   * Where drivers resolve secret references: `firstOf(envSecrets(env), keyVaultSecrets(...))`
   * when `KEY_VAULT_URL` is set (a variable overrides the vault locally), else `envSecrets(env)`.
   */
  secrets: SecretSource;
}

/** Options of {@link configFromEnv}. */
export interface ConfigFromEnvOptions {
  /** Credential for Key Vault; defaults to `azureCredential()`. */
  credential?: TokenCredential;
}

type Env = Record<string, string | undefined>;

const KEY_VAULT_NAME = /^[0-9a-zA-Z-]{1,127}$/;
/** Service Bus entity names: letters, digits, `.`, `-`, `_`, `/`; at most 260. */
const SB_QUEUE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,259}$/;
/** Storage queue names: 3–63 lower-case letters, digits and single hyphens, not at either end. */
const SQ_QUEUE = /^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/;
const SB_NAMESPACE = /^[A-Za-z][A-Za-z0-9-]{4,48}[A-Za-z0-9]$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?$/;
const SQL_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const MIN_API_KEY_LENGTH = 16;

/**
 * The `CONFIG_ERROR` naming every malformed variable (`issues[].path`), as {@link configFromEnv}
 * throws it: for a host that checks variables of its own and reports them in the same error.
 */
export function configError(issues: FieldIssue[]): SwitchyardError {
  const list = issues.map((i) => `${i.path} ${i.message}`).join('; ');
  const count = `${issues.length} problem${issues.length === 1 ? '' : 's'}`;
  return new SwitchyardError(
    'CONFIG_ERROR',
    `invalid environment configuration (${count}): ${list}`,
    {
      issues,
    },
  );
}

/**
 * Reads Switchyard's environment variables (the ones an Azure Functions app sets in
 * `local.settings.json` or App Settings) into a typed, validated {@link AzureEnvConfig}.
 *
 * | variable | meaning |
 * | --- | --- |
 * | `ENABLE_SERVICE_BUS` | `true`/`false` (default false); when true, needs a namespace or connection string |
 * | `SERVICE_BUS_NAMESPACE` / `SERVICE_BUS_CONNECTION_STRING` / `SERVICE_BUS_CONNECTION_SECRET` | credential mode / connection string / Key Vault secret name |
 * | `SERVICE_BUS_JOB_QUEUE`, `SERVICE_BUS_TASK_QUEUE` | default `sb-jobs`, `sb-tasks` |
 * | `SERVICE_BUS_MAX_DELIVERY_COUNT` | integer 1-2000, default 10 |
 * | `SERVICE_BUS_PRIORITY_LANES` | `true`/`false` (default false): task queues `<task>-high` and `<task>-low` for job priorities |
 * | `ENABLE_STORAGE_QUEUE` | `true`/`false` (default false); when true, needs an account URL or connection string |
 * | `STORAGE_CONNECTION_STRING` or `AzureWebJobsStorage` / `STORAGE_ACCOUNT_URL` / `STORAGE_CONNECTION_SECRET` | connection string / credential mode / Key Vault secret name |
 * | `STORAGE_JOB_QUEUE`, `STORAGE_TASK_QUEUE` | default `sq-jobs`, `sq-tasks` |
 * | `STORAGE_MAX_DEQUEUE_COUNT` | integer 1-1000, default 5 |
 * | `STORAGE_PRIORITY_LANES` | `true`/`false` (default false): task queues `<task>-high` and `<task>-low` for job priorities |
 * | `DATABASE_URL` / `DATABASE_SECRET` | `postgres://…` / Key Vault secret name |
 * | `DATABASE_SCHEMA` | default `switchyard` |
 * | `KEY_VAULT_URL` | vault that `*_SECRET` variables refer to |
 * | `SWITCHYARD_DEFAULT_TRANSPORT` | `servicebus`, `storagequeue`, `postgres` or `memory` |
 * | `SWITCHYARD_API_KEY` / `SWITCHYARD_API_KEY_SECRET` | HTTP API key (at least 16 characters) |
 *
 * Unset and empty (or blank) variables count as absent, numeric ones too: an empty
 * `SERVICE_BUS_MAX_DELIVERY_COUNT` is the default 10, never 0. A number must be a plain decimal
 * integer in its range (`abc`, `-1`, `1.5`, `1e3` are errors naming the variable).
 *
 * @throws SwitchyardError `CONFIG_ERROR` listing every missing or malformed variable at once in
 *   `issues` (`path` is the variable name); messages never contain a variable's value.
 */
export function configFromEnv(
  env: Env = process.env,
  options: ConfigFromEnvOptions = {},
): AzureEnvConfig {
  const issues: FieldIssue[] = [];
  const issue = (path: string, message: string) => issues.push({ path, message });
  const get = (key: string): string | undefined => {
    const value = env[key]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };

  const keyVaultUrl = parseUrl(get('KEY_VAULT_URL'), 'KEY_VAULT_URL', issue, ['https:']);
  const secrets: SecretSource = keyVaultUrl
    ? firstOf(
        envSecrets({ env }),
        keyVaultSecrets(
          options.credential
            ? { vaultUrl: keyVaultUrl, credential: options.credential }
            : { vaultUrl: keyVaultUrl },
        ),
      )
    : envSecrets({ env });

  /** A secret given either as a value (`valueVar`) or as a Key Vault secret name (`secretVar`). */
  const secretInput = (
    valueVar: string,
    secretVar: string,
    validate?: (value: string) => string | undefined,
  ): SecretInput | undefined => {
    const value = get(valueVar);
    const name = get(secretVar);
    if (value !== undefined && name !== undefined) {
      issue(secretVar, `set either ${valueVar} or ${secretVar}, not both`);
      return undefined;
    }
    if (name !== undefined) {
      if (!keyVaultUrl) {
        issue(secretVar, `names a Key Vault secret, so KEY_VAULT_URL must be set`);
        return undefined;
      }
      if (!KEY_VAULT_NAME.test(name)) {
        issue(secretVar, 'must be a Key Vault secret name (1-127 letters, digits and hyphens)');
        return undefined;
      }
      return { secret: name, source: secrets };
    }
    if (value !== undefined) {
      const problem = validate?.(value);
      if (problem) {
        issue(valueVar, problem);
        return undefined;
      }
    }
    return value;
  };

  // Service Bus
  const sbEnabled = parseBool(get('ENABLE_SERVICE_BUS'), 'ENABLE_SERVICE_BUS', issue);
  const sbNamespace = parseNamespace(get('SERVICE_BUS_NAMESPACE'), issue);
  const sbConnection = secretInput(
    'SERVICE_BUS_CONNECTION_STRING',
    'SERVICE_BUS_CONNECTION_SECRET',
    validateServiceBusConnectionString,
  );
  const serviceBus: ServiceBusEnvConfig = {
    enabled: sbEnabled,
    jobQueue: queueName(
      get('SERVICE_BUS_JOB_QUEUE'),
      'sb-jobs',
      'SERVICE_BUS_JOB_QUEUE',
      SB_QUEUE,
      issue,
    ),
    taskQueue: queueName(
      get('SERVICE_BUS_TASK_QUEUE'),
      'sb-tasks',
      'SERVICE_BUS_TASK_QUEUE',
      SB_QUEUE,
      issue,
    ),
    maxDeliveryCount: integer(get('SERVICE_BUS_MAX_DELIVERY_COUNT'), {
      name: 'SERVICE_BUS_MAX_DELIVERY_COUNT',
      fallback: 10,
      min: 1,
      max: 2000,
      issue,
    }),
    priorityLanes: parseBool(
      get('SERVICE_BUS_PRIORITY_LANES'),
      'SERVICE_BUS_PRIORITY_LANES',
      issue,
    ),
  };
  if (sbNamespace) serviceBus.fullyQualifiedNamespace = sbNamespace;
  if (sbConnection !== undefined) serviceBus.connectionString = sbConnection;
  const sbGiven = [
    'SERVICE_BUS_NAMESPACE',
    'SERVICE_BUS_CONNECTION_STRING',
    'SERVICE_BUS_CONNECTION_SECRET',
  ];
  // A variable that is set but malformed already has its own issue.
  if (sbEnabled && sbGiven.every((key) => get(key) === undefined)) {
    issue(
      'ENABLE_SERVICE_BUS',
      'is true, so set SERVICE_BUS_NAMESPACE (with a credential) or SERVICE_BUS_CONNECTION_STRING (or SERVICE_BUS_CONNECTION_SECRET)',
    );
  }

  // Storage queues: the dedicated variable wins over the Functions host's own storage.
  const sqEnabled = parseBool(get('ENABLE_STORAGE_QUEUE'), 'ENABLE_STORAGE_QUEUE', issue);
  const storageVar =
    get('STORAGE_CONNECTION_STRING') !== undefined
      ? 'STORAGE_CONNECTION_STRING'
      : 'AzureWebJobsStorage';
  const sqConnection = secretInput(
    storageVar,
    'STORAGE_CONNECTION_SECRET',
    validateStorageConnectionString,
  );
  const accountName = get('AzureWebJobsStorage__accountName');
  const sqAccountUrl =
    parseUrl(get('STORAGE_ACCOUNT_URL'), 'STORAGE_ACCOUNT_URL', issue, ['https:', 'http:']) ??
    parseUrl(
      get('AzureWebJobsStorage__queueServiceUri'),
      'AzureWebJobsStorage__queueServiceUri',
      issue,
      ['https:', 'http:'],
    ) ??
    (accountName && /^[a-z0-9]{3,24}$/.test(accountName)
      ? `https://${accountName}.queue.core.windows.net`
      : undefined);
  if (accountName && !/^[a-z0-9]{3,24}$/.test(accountName)) {
    issue(
      'AzureWebJobsStorage__accountName',
      'must be a storage account name (3-24 lower-case letters and digits)',
    );
  }
  const storageQueue: StorageQueueEnvConfig = {
    enabled: sqEnabled,
    connectionSetting: storageVar,
    jobQueue: queueName(get('STORAGE_JOB_QUEUE'), 'sq-jobs', 'STORAGE_JOB_QUEUE', SQ_QUEUE, issue),
    taskQueue: queueName(
      get('STORAGE_TASK_QUEUE'),
      'sq-tasks',
      'STORAGE_TASK_QUEUE',
      SQ_QUEUE,
      issue,
    ),
    maxDequeueCount: integer(get('STORAGE_MAX_DEQUEUE_COUNT'), {
      name: 'STORAGE_MAX_DEQUEUE_COUNT',
      fallback: 5,
      min: 1,
      max: 1000,
      issue,
    }),
    priorityLanes: parseBool(get('STORAGE_PRIORITY_LANES'), 'STORAGE_PRIORITY_LANES', issue),
  };
  if (sqConnection !== undefined) storageQueue.connectionString = sqConnection;
  if (sqAccountUrl) storageQueue.accountUrl = sqAccountUrl;
  const sqGiven = [
    'STORAGE_ACCOUNT_URL',
    'STORAGE_CONNECTION_STRING',
    'STORAGE_CONNECTION_SECRET',
    'AzureWebJobsStorage',
    'AzureWebJobsStorage__queueServiceUri',
    'AzureWebJobsStorage__accountName',
  ];
  if (sqEnabled && sqGiven.every((key) => get(key) === undefined)) {
    issue(
      'ENABLE_STORAGE_QUEUE',
      'is true, so set STORAGE_ACCOUNT_URL (with a credential) or STORAGE_CONNECTION_STRING / AzureWebJobsStorage (or STORAGE_CONNECTION_SECRET)',
    );
  }

  // Database
  const dbUrl = secretInput('DATABASE_URL', 'DATABASE_SECRET', validateDatabaseUrl);
  const schema = get('DATABASE_SCHEMA') ?? 'switchyard';
  if (!SQL_IDENTIFIER.test(schema)) {
    issue('DATABASE_SCHEMA', 'must be an unquoted SQL identifier (letters, digits, _; at most 63)');
  }
  const database: DatabaseEnvConfig = { schema };
  if (dbUrl !== undefined) database.url = dbUrl;

  // Default transport must name one that is configured.
  const transport = get('SWITCHYARD_DEFAULT_TRANSPORT')?.toLowerCase();
  let defaultTransport: TransportName | undefined;
  if (transport !== undefined) {
    if (!(TRANSPORT_NAMES as readonly string[]).includes(transport)) {
      issue('SWITCHYARD_DEFAULT_TRANSPORT', `must be one of ${TRANSPORT_NAMES.join(', ')}`);
    } else {
      defaultTransport = transport as TransportName;
      if (defaultTransport === 'servicebus' && !sbEnabled) {
        issue('SWITCHYARD_DEFAULT_TRANSPORT', 'is servicebus, but ENABLE_SERVICE_BUS is not true');
      } else if (defaultTransport === 'storagequeue' && !sqEnabled) {
        issue(
          'SWITCHYARD_DEFAULT_TRANSPORT',
          'is storagequeue, but ENABLE_STORAGE_QUEUE is not true',
        );
      } else if (
        defaultTransport === 'postgres' &&
        dbUrl === undefined &&
        !issues.some((i) => i.path.startsWith('DATABASE_'))
      ) {
        issue(
          'SWITCHYARD_DEFAULT_TRANSPORT',
          'is postgres, but neither DATABASE_URL nor DATABASE_SECRET is set',
        );
      }
    }
  }

  const apiKey = secretInput('SWITCHYARD_API_KEY', 'SWITCHYARD_API_KEY_SECRET', (value) =>
    value.length < MIN_API_KEY_LENGTH
      ? `is too short; use at least ${MIN_API_KEY_LENGTH} characters`
      : undefined,
  );

  if (issues.length > 0) throw configError(issues);

  const config: AzureEnvConfig = {
    serviceBus: redactable(serviceBus, ['connectionString']),
    storageQueue: redactable(storageQueue, ['connectionString', 'accountUrl']),
    database: redactable(database, ['url']),
    secrets,
  };
  if (keyVaultUrl) config.keyVaultUrl = keyVaultUrl;
  if (defaultTransport) config.defaultTransport = defaultTransport;
  if (apiKey !== undefined) config.apiKey = apiKey;
  return redactable(config, ['apiKey']);
}

/** How a secret field looks when the config is printed. */
function display(value: unknown): unknown {
  if (typeof value === 'string') return '[secret]';
  if (isSecretRef(value)) return { secret: value.secret, source: value.source?.name ?? 'default' };
  return value;
}

/**
 * Gives `obj` non-enumerable `toJSON` and `util.inspect` hooks that print secret fields as
 * `[secret]`, sections through their own hooks, and sources by name. Non-enumerable so spreads
 * and `Object.keys` see only the data.
 */
function redactable<T extends object>(obj: T, secretKeys: readonly string[]): T {
  const view = (): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(obj)) {
      if (secretKeys.includes(key)) {
        // A URL is not a secret, but a SAS token in its query string is.
        out[key] =
          key === 'accountUrl' && typeof value === 'string'
            ? redactSecrets(value, [])
            : display(value);
      } else if (isSource(value)) {
        out[key] = value.name;
      } else {
        out[key] = value;
      }
    }
    return out;
  };
  Object.defineProperty(obj, 'toJSON', { value: view, enumerable: false });
  Object.defineProperty(obj, Symbol.for('nodejs.util.inspect.custom'), {
    value: (_depth: number, opts: object, inspect: (v: unknown, o: object) => string) =>
      inspect(view(), opts),
    enumerable: false,
  });
  return obj;
}

function isSource(value: unknown): value is SecretSource {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as SecretSource).getSecret === 'function' &&
    typeof (value as SecretSource).name === 'string'
  );
}

function parseBool(
  value: string | undefined,
  key: string,
  issue: (path: string, message: string) => void,
): boolean {
  if (value === undefined) return false;
  const v = value.toLowerCase();
  if (['true', '1', 'yes'].includes(v)) return true;
  if (['false', '0', 'no'].includes(v)) return false;
  issue(key, 'must be true or false');
  return false;
}

/** A decimal integer variable in `[min, max]`; absent → `fallback`; anything else is an issue. */
function integer(
  value: string | undefined,
  rule: {
    name: string;
    fallback: number;
    min: number;
    max: number;
    issue: (path: string, message: string) => void;
  },
): number {
  if (value === undefined) return rule.fallback;
  const n = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN;
  if (n >= rule.min && n <= rule.max) return n;
  rule.issue(rule.name, `must be an integer from ${rule.min} to ${rule.max}`);
  return rule.fallback;
}

function parseUrl(
  value: string | undefined,
  key: string,
  issue: (path: string, message: string) => void,
  protocols: readonly string[],
): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    issue(key, `must be a URL (${protocols.join(' or ')})`);
    return undefined;
  }
  if (!protocols.includes(url.protocol)) {
    issue(key, `must be a ${protocols.join(' or ')} URL`);
    return undefined;
  }
  return value.replace(/\/+$/, '');
}

function parseNamespace(
  value: string | undefined,
  issue: (path: string, message: string) => void,
): string | undefined {
  if (value === undefined) return undefined;
  // Accept `my-ns`, `my-ns.servicebus.windows.net` and `sb://my-ns.servicebus.windows.net/`.
  const host = value.replace(/^sb:\/\//i, '').replace(/\/+$/, '');
  if (host.includes('.')) {
    if (HOSTNAME.test(host)) return host;
  } else if (SB_NAMESPACE.test(host)) {
    return `${host}.servicebus.windows.net`;
  }
  issue(
    'SERVICE_BUS_NAMESPACE',
    'must be a namespace name (6-50 letters, digits, hyphens) or its host name (my-ns.servicebus.windows.net)',
  );
  return undefined;
}

function queueName(
  value: string | undefined,
  fallback: string,
  key: string,
  pattern: RegExp,
  issue: (path: string, message: string) => void,
): string {
  if (value === undefined) return fallback;
  if (!pattern.test(value)) {
    issue(
      key,
      pattern === SQ_QUEUE
        ? 'must be a storage queue name (3-63 lower-case letters, digits and single hyphens)'
        : 'must be a Service Bus queue name (letters, digits, . - _ /; at most 260)',
    );
  }
  return value;
}

/** `Key=Value;` pairs, keys lower-cased. Values are never echoed into messages. */
function connectionPairs(value: string): Map<string, string> {
  const pairs = new Map<string, string>();
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) pairs.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return pairs;
}

function validateServiceBusConnectionString(value: string): string | undefined {
  const pairs = connectionPairs(value);
  if (!/^sb:\/\//i.test(pairs.get('endpoint') ?? '')) {
    return 'must be a Service Bus connection string (Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…)';
  }
  const hasKey = pairs.has('sharedaccesskeyname') && pairs.has('sharedaccesskey');
  if (!hasKey && !pairs.has('sharedaccesssignature')) {
    return 'has no SharedAccessKeyName/SharedAccessKey or SharedAccessSignature';
  }
  return undefined;
}

function validateStorageConnectionString(value: string): string | undefined {
  const pairs = connectionPairs(value);
  if (pairs.get('usedevelopmentstorage')?.toLowerCase() === 'true') return undefined;
  const hasAccount = pairs.has('accountname') && pairs.has('accountkey');
  const hasSas =
    pairs.has('sharedaccesssignature') && (pairs.has('queueendpoint') || pairs.has('accountname'));
  if (!hasAccount && !hasSas && !pairs.has('queueendpoint')) {
    return 'must be a storage connection string (AccountName=…;AccountKey=…, a SAS with QueueEndpoint, or UseDevelopmentStorage=true)';
  }
  return undefined;
}

function validateDatabaseUrl(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be a postgres:// URL';
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    return 'must be a postgres:// URL';
  return undefined;
}
