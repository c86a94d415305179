import { existsSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Newest modification time under a folder (the app's sources). */
async function newest(dir: string): Promise<number> {
  let latest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (entry.isFile())
      latest = Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  return latest;
}

/** Builds the app bundle when it is missing or older than its sources (a fresh clone has none). */
export default async function setup(): Promise<void> {
  const bundle = join(root, 'dist', 'app', 'app.js');
  if (existsSync(bundle) && statSync(bundle).mtimeMs >= (await newest(join(root, 'app')))) return;
  const { buildApp } = await import('../scripts/build-app.mjs');
  await buildApp();
}
