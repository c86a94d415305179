/**
 * Every ```ts block of the READMEs is type-checked as a module against the packages' sources, so
 * an example cannot drift from the API. A block that uses names it does not define (`urls`, a
 * connection, …) declares them in an HTML comment right above it, shown to no reader:
 * `<!-- example-prelude: declare const urls: string[]; -->`.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, test } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');

interface Example {
  readme: string;
  line: number;
  source: string;
}

function readmes(): string[] {
  const found = ['README.md'];
  for (const dir of ['packages', 'examples']) {
    for (const name of readdirSync(join(root, dir))) {
      const readme = join(dir, name, 'README.md');
      try {
        readFileSync(join(root, readme));
        found.push(readme);
      } catch {
        // a folder without a README has no examples
      }
    }
  }
  return found;
}

function examples(readme: string): Example[] {
  const lines = readFileSync(join(root, readme), 'utf8').split('\n');
  const found: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]?.trim() !== '```ts') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end]?.trim() !== '```') end++;
    const prelude = /^<!-- example-prelude:([\s\S]*?)-->$/.exec(lines[i - 1]?.trim() ?? '')?.[1];
    const body = lines.slice(start, end).join('\n');
    found.push({ readme, line: start + 1, source: `${prelude ?? ''}\n${body}\nexport {};\n` });
    i = end;
  }
  return found;
}

const all = readmes().flatMap(examples);
// Inside the repository, so the packages resolve through its node_modules as a user's would.
const base = join(root, 'test/docs/.examples');
mkdirSync(base, { recursive: true });
const dir = mkdtempSync(join(base, 'run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const files = all.map((example, i) => {
  const file = join(dir, `${example.readme.replaceAll('/', '_').replace(/\.md$/, '')}_${i}.ts`);
  writeFileSync(file, example.source);
  return file;
});
const config = ts.getParsedCommandLineOfConfigFile(
  join(root, 'tsconfig.base.json'),
  {},
  { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} },
);
const program = ts.createProgram(files, { ...config?.options, noEmit: true, skipLibCheck: true });

describe('README examples compile as written', () => {
  test('there are examples to check', () => {
    expect(all.length).toBeGreaterThan(10);
  });
  test.each(all.map((example, i) => [`${example.readme}:${example.line}`, i] as const))(
    '%s',
    (_label, i) => {
      const sourceFile = program.getSourceFile(files[i] as string);
      const diagnostics = ts.getPreEmitDiagnostics(program, sourceFile).map((d) => {
        const where =
          d.file && d.start !== undefined
            ? d.file.getLineAndCharacterOfPosition(d.start)
            : undefined;
        const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
        return `${where ? `${relative(root, d.file?.fileName ?? '')}:${where.line + 1}` : ''} ${text}`;
      });
      expect(diagnostics).toEqual([]);
    },
  );
});
