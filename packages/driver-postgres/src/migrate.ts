import { readdir, readFile } from 'node:fs/promises';
import type { SqlAdapter } from './adapter.js';

/** The package's `sql/` folder (next to `src/` and `dist/`). */
const SQL_DIR = new URL('../sql/', import.meta.url);

export interface Migration {
  id: number;
  name: string;
  script: string;
}

let cached: Promise<Migration[]> | undefined;

/** The migrations shipped with the package, `sql/000001_init.sql` …, in order. */
export function loadMigrations(): Promise<Migration[]> {
  cached ??= (async () => {
    const files = (await readdir(SQL_DIR)).filter((f) => /^\d{6}_[a-z0-9_]+\.sql$/.test(f)).sort();
    return Promise.all(
      files.map(async (name) => ({
        id: Number(name.slice(0, 6)),
        name,
        script: await readFile(new URL(name, SQL_DIR), 'utf8'),
      })),
    );
  })();
  return cached;
}

/**
 * Applies the missing migrations to `schema` in one transaction. The transaction-scoped advisory
 * lock (keyed by schema) makes concurrent starters queue up: the second one finds everything
 * recorded and applies nothing. Returns the ids applied by this call.
 */
export async function migrate(
  adapter: SqlAdapter,
  schemaName: string,
  quotedSchema: string,
): Promise<number[]> {
  const migrations = await loadMigrations();
  return adapter.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
      `switchyard.migrate.${schemaName}`,
    ]);
    await tx.exec(`CREATE SCHEMA IF NOT EXISTS ${quotedSchema}`);
    await tx.exec(
      `CREATE TABLE IF NOT EXISTS ${quotedSchema}.migrations (id int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = new Set(
      (await tx.query<{ id: number }>(`SELECT id FROM ${quotedSchema}.migrations`)).map(
        (r) => r.id,
      ),
    );
    const applied: number[] = [];
    // Unqualified names in the scripts land in the target schema (transaction-local setting).
    await tx.exec(`SET LOCAL search_path TO ${quotedSchema}`);
    for (const m of migrations) {
      if (done.has(m.id)) continue;
      await tx.exec(m.script);
      await tx.query(`INSERT INTO ${quotedSchema}.migrations (id, name) VALUES ($1, $2)`, [
        m.id,
        m.name,
      ]);
      applied.push(m.id);
    }
    return applied;
  });
}
