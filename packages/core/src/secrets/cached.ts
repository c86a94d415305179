import { isSwitchyardError, SwitchyardError } from '../errors.js';
import { redactSecrets, rememberSecretValue } from './redact.js';
import { SecretValue } from './secret-value.js';
import { envSecrets, type SecretInput } from './sources.js';
import type { SecretRef, SecretSource } from './types.js';

/** A secret resolved once and cached; see {@link cachedSecret}. */
export interface CachedSecret {
  /** The secret's name (never its value). */
  readonly name: string;
  /** The cached value, looking it up first if there is none or it has expired. */
  get(options?: { abortSignal?: AbortSignal }): Promise<string>;
  /** Looks the secret up again now (e.g. after an auth failure) and caches the new value. */
  refresh(): Promise<string>;
}

/** Options of {@link cachedSecret}. */
export interface CachedSecretOptions {
  /** Used when the reference names no source; defaults to `envSecrets()`. */
  defaultSource?: SecretSource;
  /** How long a resolved value is reused. Default 5 minutes. */
  ttlMs?: number;
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number;
}

const DEFAULT_TTL_MS = 5 * 60_000;

/**
 * Resolves a {@link SecretRef} once and caches it for `ttlMs`. Concurrent `get()`s share one
 * lookup; `refresh()` forces a new one (concurrent refreshes share it too). A failed lookup is
 * not cached.
 *
 * @throws SwitchyardError `SECRET_NOT_FOUND` (naming the secret and the source) when the source
 *   does not hold the secret; `BACKEND_ERROR`/`AUTH_FAILED` from the source pass through.
 */
export function cachedSecret(ref: SecretRef, options: CachedSecretOptions = {}): CachedSecret {
  const source = ref.source ?? options.defaultSource ?? envSecrets();
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  const now = options.now ?? Date.now;
  const name = ref.secret;

  let cached: { value: SecretValue; expiresAt: number } | undefined;
  let inflight: { promise: Promise<SecretValue>; forced: boolean } | undefined;
  // Lookups are numbered so a slow older lookup cannot overwrite a value a later refresh() cached.
  let started = 0;
  let cachedGeneration = 0;

  const lookup = (forced: boolean): Promise<SecretValue> => {
    const generation = ++started;
    // The shared lookup takes no caller's abort signal: one caller giving up must not fail the others.
    const promise = resolve(source, name).then(
      (value) => {
        if (generation > cachedGeneration) {
          cached = { value, expiresAt: now() + ttlMs };
          cachedGeneration = generation;
        }
        if (inflight?.promise === promise) inflight = undefined;
        return value;
      },
      (err: unknown) => {
        if (inflight?.promise === promise) inflight = undefined;
        throw err;
      },
    );
    inflight = { promise, forced };
    return promise;
  };

  return {
    name,
    async get(opts = {}) {
      opts.abortSignal?.throwIfAborted();
      if (cached && now() < cached.expiresAt) return cached.value.reveal();
      const pending = inflight?.promise ?? lookup(false);
      return (await abortable(pending, opts.abortSignal, name)).reveal();
    },
    async refresh() {
      // A refresh already under way started after the failure that prompted this one: share it.
      const pending = inflight?.forced ? inflight.promise : lookup(true);
      return (await pending).reveal();
    },
  };
}

/**
 * What a driver does with a `string | SecretRef` option: a reference becomes a
 * {@link cachedSecret}; a plain value becomes a `CachedSecret` that always returns it (and is
 * remembered for {@link redactSecrets}), so driver code has one path for both.
 *
 * @param label names an inline value in errors (e.g. `connectionString`), never the value itself.
 */
export function toCachedSecret(
  input: SecretInput,
  options: CachedSecretOptions & { label?: string } = {},
): CachedSecret {
  if (typeof input !== 'string') return cachedSecret(input, options);
  rememberSecretValue(input);
  const value = new SecretValue(input);
  const name = options.label ?? 'inline value';
  return {
    name,
    get: async () => value.reveal(),
    refresh: async () => value.reveal(),
  };
}

async function resolve(source: SecretSource, name: string): Promise<SecretValue> {
  let value: string | undefined;
  try {
    value = await source.getSecret(name);
  } catch (err) {
    if (isSwitchyardError(err)) throw err;
    // Source errors may echo request data; redact before it reaches a log.
    const detail = err instanceof Error ? redactSecrets(err.message) : 'unknown error';
    throw new SwitchyardError(
      'BACKEND_ERROR',
      `could not read secret "${name}" from ${source.name}: ${detail}`,
      { cause: err },
    );
  }
  if (value === undefined) {
    throw new SwitchyardError('SECRET_NOT_FOUND', `secret "${name}" not found in ${source.name}`);
  }
  rememberSecretValue(value);
  return new SecretValue(value);
}

function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  name: string,
): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolvePromise, reject) => {
    const onAbort = () =>
      reject(
        new SwitchyardError('ABORTED', `lookup of secret "${name}" aborted`, {
          cause: signal.reason,
        }),
      );
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolvePromise(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Runs `use(value)`. If it fails with an error `isAuthError` recognises (the secret was rotated),
 * refreshes the secret once and tries again.
 *
 * @throws SwitchyardError `AUTH_FAILED` (cause attached; the message names the secret, never its
 *   value) when the retry fails authentication too. Other errors from `use` pass through.
 */
export async function withSecretRotation<T>(
  secret: CachedSecret,
  use: (value: string) => Promise<T>,
  isAuthError: (err: unknown) => boolean,
): Promise<T> {
  try {
    return await use(await secret.get());
  } catch (err) {
    if (!isAuthError(err)) throw err;
  }
  const fresh = await secret.refresh();
  try {
    return await use(fresh);
  } catch (err) {
    if (!isAuthError(err)) throw err;
    throw new SwitchyardError(
      'AUTH_FAILED',
      `authentication failed with secret "${secret.name}", also after refreshing it`,
      { cause: err },
    );
  }
}
