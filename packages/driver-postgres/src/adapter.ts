/**
 * One thin query adapter over a `pg` Pool or an in-process PGlite, so the store and the transport
 * are written once. Differences between the engines are capability flags, never backend checks.
 */

import { createHash } from 'node:crypto';
import type { SecretInput, SecretSource } from '@switchyard/core';
import { SwitchyardError } from '@switchyard/core';
import type { CachedSecret } from '@switchyard/core/driver';
import { toCachedSecret, withSecretRotation } from '@switchyard/core/driver';
import pg from 'pg';
import { arrayLiteral } from './arrays.js';
import { retryConflicts } from './conflicts.js';
import { backendError, isAuthError } from './errors.js';

/** Anything that runs one parameterised statement. */
export interface Queryable {
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

export interface AdapterCapabilities {
  /** Several statements can run at once (a pool). PGlite: false, one session. */
  concurrent: boolean;
  /** How many statements are worth running at once. */
  parallelism: number;
}

export interface SqlAdapter extends Queryable {
  readonly capabilities: AdapterCapabilities;
  /**
   * Runs `fn` in one transaction on one connection; rolls back if it throws. After a deadlock or
   * serialization failure the whole transaction runs again (`fn` must be safe to re-run).
   */
  transaction<T>(
    fn: (tx: Queryable & { exec(script: string): Promise<void> }) => Promise<T>,
  ): Promise<T>;
  /** Subscribes to a NOTIFY channel; resolves to the unsubscribe function. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** The parts of a PGlite instance the adapter uses (structural, so PGlite stays optional). */
export interface PGliteLike {
  query<T>(query: string, params?: unknown[]): Promise<{ rows: T[] }>;
  exec(query: string): Promise<unknown>;
  transaction<T>(callback: (tx: PGliteTransactionLike) => Promise<T>): Promise<T>;
  listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
  readonly closed?: boolean;
}

interface PGliteTransactionLike {
  query<T>(query: string, params?: unknown[]): Promise<{ rows: T[] }>;
  exec(query: string): Promise<unknown>;
}

/** How a driver reaches its database. Give exactly one of `pool`, `pglite`, `connectionString`. */
export interface ConnectionOptions {
  /** An existing `pg` Pool. The driver never ends it. */
  pool?: pg.Pool;
  /**
   * An in-process PGlite: an instance (never closed by the driver), a data directory to open, or
   * `true` for an in-memory database. `@electric-sql/pglite` is loaded only when this is used.
   */
  pglite?: PGliteLike | string | true;
  /** A connection string, or `{ secret: 'name' }` resolved through `secrets` (refreshed once on an auth failure). */
  connectionString?: SecretInput;
  /** Same as `connectionString: { secret }`. */
  secret?: string;
  /** Where secret references resolve; defaults to environment variables. */
  secrets?: SecretSource;
  /** Pool size when the driver creates the pool. @defaultValue 10 */
  poolSize?: number;
  /**
   * Run statements as named prepared statements, parsed once per connection. On a pool the driver
   * creates, its sessions also use generic plans (`plan_cache_mode = force_generic_plan`), so the
   * batch statements are not planned again on every call. Set `false` behind a connection pooler
   * that cannot keep prepared statements (PgBouncer in transaction mode without
   * `max_prepared_statements`). Ignored for PGlite. @defaultValue true
   */
  preparedStatements?: boolean;
}

const adapters = new WeakMap<object, SqlAdapter>();

/** Builds (or, for a shared PGlite instance, reuses) the adapter for `options`. */
export async function connect(
  options: ConnectionOptions,
  who: string,
): Promise<{ adapter: SqlAdapter; owned: boolean }> {
  const given = [options.pool, options.pglite, options.connectionString, options.secret].filter(
    (v) => v !== undefined,
  );
  if (given.length !== 1) {
    throw new SwitchyardError(
      'CONFIG_ERROR',
      `[switchyard] [postgres] ${who} needs exactly one of pool, pglite, connectionString, secret`,
      {
        issues: [
          { path: 'pool', message: 'give exactly one of pool, pglite, connectionString, secret' },
        ],
      },
    );
  }
  if (options.pool) {
    const pool = options.pool;
    return {
      adapter: new PgAdapter(() => pool, { prepare: options.preparedStatements !== false }),
      owned: true,
    };
  }
  if (options.pglite !== undefined) {
    if (typeof options.pglite === 'object') {
      // One PGlite is one session: every user of the instance must share one serialising queue.
      let adapter = adapters.get(options.pglite);
      if (!adapter) {
        adapter = new PGliteAdapter(options.pglite, false);
        adapters.set(options.pglite, adapter);
      }
      return { adapter, owned: false };
    }
    const { PGlite } = await import('@electric-sql/pglite');
    const db = options.pglite === true ? new PGlite() : new PGlite(options.pglite);
    return { adapter: new PGliteAdapter(db as unknown as PGliteLike, true), owned: true };
  }
  const input: SecretInput = options.connectionString ?? { secret: options.secret! };
  const secret = toCachedSecret(input, {
    ...(options.secrets ? { defaultSource: options.secrets } : {}),
    label: 'connectionString',
  });
  const size = options.poolSize ?? 10;
  const prepare = options.preparedStatements !== false;
  // Our statements batch by arrays: their best plan does not depend on the values, and planning
  // them again on every call cost as much as running them. (An `options` parameter in the
  // connection string replaces this one.)
  const makePool = (connectionString: string) =>
    new pg.Pool({
      connectionString,
      max: size,
      ...(prepare ? { options: '-c plan_cache_mode=force_generic_plan' } : {}),
    });
  return { adapter: new PgAdapter(makePool, { prepare, secret }), owned: true };
}

class PgAdapter implements SqlAdapter {
  readonly capabilities: AdapterCapabilities = { concurrent: true, parallelism: 4 };
  /** The pool and the connection string it was made with (undefined for a caller's pool). */
  private current: { pool: pg.Pool; connectionString: string | undefined } | undefined;
  private listener:
    | { client: pg.PoolClient; channels: Map<string, Set<(payload: string) => void>> }
    | undefined;
  /** The listener while it is being opened: concurrent callers share it. */
  private opening:
    | Promise<{ client: pg.PoolClient; channels: Map<string, Set<(payload: string) => void>> }>
    | undefined;
  private closed = false;

  private readonly prepare: boolean;
  private readonly secret: CachedSecret | undefined;

  /**
   * @param makePool builds a pool for a connection string (ours), or returns the caller's pool.
   * @param options.prepare run statements as named prepared statements.
   * @param options.secret where the connection string comes from; absent for a caller's pool.
   */
  constructor(
    private readonly makePool: (connectionString: string) => pg.Pool,
    options: { prepare: boolean; secret?: CachedSecret },
  ) {
    this.prepare = options.prepare;
    this.secret = options.secret;
  }

  /** The pool for `connectionString`; a rotated secret replaces (and ends) the old pool. */
  private poolFor(connectionString: string | undefined): pg.Pool {
    if (this.closed)
      throw new SwitchyardError('CLOSED', '[switchyard] [postgres] used after close()');
    if (this.current && this.current.connectionString === connectionString)
      return this.current.pool;
    const old = this.current;
    const pool = this.makePool(connectionString ?? '');
    // An idle client's error (server restart) must not crash the process; the next query reconnects.
    if (this.secret) pool.on('error', () => {});
    this.current = { pool, connectionString };
    if (old && this.secret) void old.pool.end().catch(() => {});
    return pool;
  }

  /** Runs `fn` on the pool; with a secret-sourced connection string an auth failure refreshes it once and retries. */
  private async withPool<T>(operation: string, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
    try {
      if (!this.secret) return await fn(this.poolFor(undefined));
      return await withSecretRotation(this.secret, (value) => fn(this.poolFor(value)), isAuthError);
    } catch (err) {
      throw backendError(err, operation);
    }
  }

  /** One statement, its own transaction: a deadlock victim is rolled back whole and re-run. */
  query<R>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    const values = params.map(toParam);
    const name = this.prepare ? statementName(text) : undefined;
    return this.withPool('query', (pool) =>
      retryConflicts(
        async () => (await pool.query({ text, values, ...(name ? { name } : {}) })).rows as R[],
      ),
    );
  }

  transaction<T>(
    fn: (tx: Queryable & { exec(script: string): Promise<void> }) => Promise<T>,
  ): Promise<T> {
    return this.withPool('transaction', (pool) => retryConflicts(() => this.once(pool, fn)));
  }

  /** One run of a transaction on its own connection. */
  private async once<T>(
    pool: pg.Pool,
    fn: (tx: Queryable & { exec(script: string): Promise<void> }) => Promise<T>,
  ): Promise<T> {
    const client = await pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await fn({
        query: async <R>(text: string, params: readonly unknown[] = []) =>
          (await client.query(text, params as unknown[])).rows as R[],
        exec: async (script: string) => {
          await client.query(script);
        },
      });
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async listen(
    channel: string,
    onPayload: (payload: string) => void,
  ): Promise<() => Promise<void>> {
    const { client, channels } = this.listener ?? (await this.openListener());
    let set = channels.get(channel);
    if (!set) {
      set = new Set();
      channels.set(channel, set);
      await client.query(`LISTEN ${quoteIdent(channel)}`).catch((err) => {
        throw backendError(err, 'listen');
      });
    }
    set.add(onPayload);
    return async () => {
      set.delete(onPayload);
    };
  }

  /**
   * The dedicated connection LISTEN needs (it is per session and must stay checked out), opened
   * once: callers racing here share it — two checked out, the one not kept would never be
   * released and the pool could never end.
   */
  private openListener(): Promise<NonNullable<PgAdapter['listener']>> {
    this.opening ??= (async () => {
      try {
        const client = await this.withPool('listen', (pool) => pool.connect());
        const channels = new Map<string, Set<(payload: string) => void>>();
        client.on('notification', (n) => {
          for (const cb of channels.get(n.channel) ?? []) cb(n.payload ?? '');
        });
        client.on('error', () => {
          // Lost listener: callers fall back to polling; the next listen() opens a new one.
          if (this.listener?.client === client) this.listener = undefined;
          client.release(true);
        });
        this.listener = { client, channels };
        return this.listener;
      } finally {
        this.opening = undefined;
      }
    })();
    return this.opening;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const listener = this.listener;
    this.listener = undefined;
    listener?.client.release(true);
    // A caller's pool is theirs to end.
    if (this.secret && this.current) await this.current.pool.end();
  }
}

/**
 * PGlite is a single session: statements are serialised on one queue here, and a transaction holds
 * the queue for its whole duration so nothing interleaves with it.
 */
class PGliteAdapter implements SqlAdapter {
  readonly capabilities: AdapterCapabilities = { concurrent: false, parallelism: 1 };
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly db: PGliteLike,
    private readonly ownsDb: boolean,
  ) {}

  private enqueue<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed || this.db.closed)
      return Promise.reject(
        new SwitchyardError('CLOSED', '[switchyard] [postgres] used after close()'),
      );
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => {});
    return run.catch((err: unknown) => {
      throw backendError(err, operation);
    });
  }

  query<R>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    return this.enqueue('query', async () => (await this.db.query<R>(text, [...params])).rows);
  }

  transaction<T>(
    fn: (tx: Queryable & { exec(script: string): Promise<void> }) => Promise<T>,
  ): Promise<T> {
    return this.enqueue('transaction', () =>
      this.db.transaction((tx) =>
        fn({
          query: async <R>(text: string, params: readonly unknown[] = []) =>
            (await tx.query<R>(text, [...params])).rows,
          exec: async (script: string) => {
            await tx.exec(script);
          },
        }),
      ),
    );
  }

  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
    return this.enqueue('listen', async () => {
      const unlisten = await this.db.listen(channel, onPayload);
      return () => this.enqueue('unlisten', () => unlisten()).catch(() => {});
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.ownsDb) {
      await this.tail;
      this.closed = true;
      await this.db.close();
    }
  }
}

/** Quotes an identifier built from validated parts (channel names). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const statementNames = new Map<string, string>();

/**
 * The prepared statement name for a statement text: a digest of the text, so the same text gets the
 * same name on every connection, and two copies of the driver sharing a pool never give one name
 * to two texts. Memoised: the texts are the drivers' own constants, one set per schema.
 */
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `switchyard_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
    statementNames.set(text, name);
  }
  return name;
}

/** Arrays go as literals built here (see arrays.ts); everything else as pg prepares it. */
const toParam = (value: unknown): unknown =>
  Array.isArray(value) ? (arrayLiteral(value) ?? value) : value;
