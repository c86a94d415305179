/**
 * How an Azure driver reaches its service: a connection string, a secret holding one (re-read
 * when it is rotated), or an endpoint with an Entra ID credential. One resolution shared by the
 * Service Bus and Storage Queue drivers, so both accept and reject the same option shapes with
 * the same messages. This module loads no Azure SDK (importable as `@switchyard/azure/connection`
 * by a connection-string user who never needs `@azure/identity`).
 * @module
 */

import type { TokenCredential } from '@azure/core-auth';
import type { FieldIssue, SecretSource } from '@switchyard/core';
import {
  type CachedSecret,
  cachedSecret,
  isSecretRef,
  type SecretInput,
} from '@switchyard/core/driver';

/** The connection options both Azure drivers take (the endpoint's option name differs per driver). */
export interface ConnectionOptions {
  /** A connection string, or a secret reference (`{ secret: 'name' }`) resolving to one. */
  connectionString?: SecretInput;
  /** Name of a secret holding the connection string (shorthand for `connectionString: { secret }`). */
  secret?: string;
  /** Where secret references without a source are resolved. @defaultValue environment variables */
  secrets?: SecretSource;
  /** Entra ID credential for the endpoint. @defaultValue `azureCredential()` (`DefaultAzureCredential`) */
  credential?: TokenCredential;
}

/** The endpoint option of one driver, e.g. Service Bus's `fullyQualifiedNamespace`. */
export interface EndpointOption {
  /** The option's name, used in messages and issue paths. */
  name: string;
  /** Its value as given. */
  value: unknown;
  /** Why a given value is unusable (a message naming the expected form), or undefined if usable. */
  check?: (value: string) => string | undefined;
}

/** A resolved connection: exactly one way of building clients. */
export type ConnectionSource =
  | { kind: 'connectionString'; value: string }
  | { kind: 'secret'; secret: CachedSecret }
  | { kind: 'endpoint'; endpoint: string; credential: TokenCredential | undefined };

/**
 * Resolves `options` into one {@link ConnectionSource}. Exactly one of `connectionString`,
 * `secret` and the endpoint must be given; otherwise (or for a malformed value) an issue naming
 * the field is pushed onto `issues` and undefined returned. Never quotes a connection string.
 */
export function resolveConnectionSource(
  options: ConnectionOptions,
  endpoint: EndpointOption,
  issues: FieldIssue[],
): ConnectionSource | undefined {
  const given = [
    options.connectionString !== undefined && 'connectionString',
    options.secret !== undefined && 'secret',
    endpoint.value !== undefined && endpoint.name,
  ].filter((x): x is string => typeof x === 'string');
  if (given.length !== 1) {
    issues.push({
      path: given.length === 0 ? 'connectionString' : given.join('/'),
      message:
        given.length === 0
          ? `give exactly one of connectionString, secret or ${endpoint.name}`
          : `give exactly one of connectionString, secret or ${endpoint.name}: only one may be set (got ${given.join(' and ')})`,
    });
    return undefined;
  }
  const secretOptions = options.secrets ? { defaultSource: options.secrets } : {};
  if (options.secret !== undefined) {
    if (typeof options.secret !== 'string' || options.secret === '') {
      issues.push({ path: 'secret', message: 'must be a non-empty secret name' });
      return undefined;
    }
    return { kind: 'secret', secret: cachedSecret({ secret: options.secret }, secretOptions) };
  }
  if (options.connectionString !== undefined) {
    if (isSecretRef(options.connectionString)) {
      return { kind: 'secret', secret: cachedSecret(options.connectionString, secretOptions) };
    }
    if (typeof options.connectionString !== 'string' || options.connectionString === '') {
      issues.push({
        path: 'connectionString',
        message: 'must be a non-empty connection string or a secret reference ({ secret })',
      });
      return undefined;
    }
    return { kind: 'connectionString', value: options.connectionString };
  }
  const value = endpoint.value;
  const problem =
    typeof value !== 'string' || value === ''
      ? 'must be a non-empty string'
      : endpoint.check?.(value);
  if (problem !== undefined || typeof value !== 'string') {
    issues.push({ path: endpoint.name, message: problem ?? 'must be a non-empty string' });
    return undefined;
  }
  return { kind: 'endpoint', endpoint: value, credential: options.credential };
}
