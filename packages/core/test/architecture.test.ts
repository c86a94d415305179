import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const engine = join(root, 'packages/core/src/engine');

/** The files of a folder, recursively, relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

/** The first-column file names of the table under a heading of ARCHITECTURE.md. */
function mappedFiles(heading: string): string[] {
  const text = readFileSync(join(root, 'ARCHITECTURE.md'), 'utf8');
  const section = text.slice(text.indexOf(heading));
  const table = section.slice(0, section.indexOf('\n\n', section.indexOf('| file |')));
  return [...table.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!).sort();
}

describe('ARCHITECTURE.md', () => {
  it('maps every engine module, and only the modules that exist', () => {
    expect(mappedFiles('### `packages/core/src/engine`')).toEqual(filesUnder(engine));
  });

  it('keeps every engine module under 400 lines', () => {
    const long = filesUnder(engine)
      .map((f) => ({ f, lines: readFileSync(join(engine, f), 'utf8').split('\n').length }))
      .filter((x) => x.lines > 400);
    expect(long).toEqual([]);
  });
});
