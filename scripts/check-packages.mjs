// Checks every public package as a user receives it: packed by `npm pack`, installed alone into an
// empty project (its tarball, the tarballs of the Switchyard packages it declares, everything else
// from the registry), then:
//   - the tarball carries its README and LICENSE
//   - dependencies: each declared dependency is imported by the built code, each import declared
//   - publint and "are the types wrong" (ESM-only profile) on the tarball
//   - every export-map entry type-checks under `tsc --strict` with skipLibCheck false on the
//     pinned TypeScript and the newest, and loads under Node 20 and 22 with import and require()
//   - two small applications (scripts/consumer): a three-stage typed job on core's memory drivers,
//     and a job on PostgreSQL (DATABASE_URL) using core and driver-postgres alone
// Run after `npm run build`. Exits non-zero on the first class of failure found, listing them all.
//
//   node scripts/check-packages.mjs [--keep] [--only <package>…]
//   (--keep leaves the temporary projects for a look; --only checks those packages alone)
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
/** TypeScript versions a user compiles with: the repository's pinned one and the newest. */
const TYPESCRIPT = ['5.9.3', '7.0.2'];
/** Versions the consumer projects install next to the tarballs, as a user would. */
const USER_DEPS = ['@types/node@20', 'zod@4'];
const keep = process.argv.includes('--keep');
const only = process.argv.includes('--only')
  ? process.argv.slice(process.argv.indexOf('--only') + 1).filter((a) => !a.startsWith('--'))
  : [];
const work = mkdtempSync(join(tmpdir(), 'switchyard-packages-'));
const failures = [];
const started = Date.now();

function run(cmd, args, options = {}) {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options,
  });
}
/** Runs a check; a failure is recorded with its output and the run goes on. */
function check(label, fn) {
  try {
    const detail = fn();
    console.log(`ok   ${label}${detail ? ` — ${detail}` : ''}`);
  } catch (err) {
    const output =
      [err.stdout, err.stderr].filter(Boolean).join('\n').trim() || String(err.message);
    failures.push(label);
    console.log(`FAIL ${label}\n${output.replace(/^/gm, '     ')}`);
  }
}
function npm(args, cwd) {
  return run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
    cwd,
  });
}

// The public packages, their export-map entries and their tarballs.
const packages = readdirSync(join(root, 'packages'))
  .map((dir) => ({ dir, folder: join(root, 'packages', dir) }))
  .map((p) => ({ ...p, json: JSON.parse(readFileSync(join(p.folder, 'package.json'), 'utf8')) }))
  .filter((p) => !p.json.private);
const checked = packages.filter((p) => only.length === 0 || only.includes(p.json.name));
const tarballs = join(work, 'tarballs');
mkdirSync(tarballs);
/** Files every tarball carries besides its build: what a user reads before installing. */
const SHIPPED = ['package.json', 'README.md', 'LICENSE'];
for (const p of packages) {
  const [packed] = JSON.parse(
    npm(['pack', '--json', '--pack-destination', tarballs, '-w', p.json.name], root),
  );
  p.tarball = join(tarballs, packed.filename);
  p.packedFiles = packed.files.map((f) => f.path);
}
const byName = new Map(packages.map((p) => [p.json.name, p]));

/** Bare module names a built file imports (static, dynamic and type imports). */
function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const names = new Set();
  for (const m of text.matchAll(/(?:from\s*|import\s*\(\s*|import\s+)['"]([^'"./][^'"]*)['"]/g)) {
    const spec = m[1];
    if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0])) continue;
    names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
  }
  return names;
}
function filesUnder(dir) {
  return readdirSync(dir, { recursive: true })
    .map((f) => join(dir, f))
    .filter((f) => /\.(js|d\.ts)$/.test(f));
}

// Node 22 comes from the official binary (scripts/node-version.sh); Node 20 is the machine's.
const nodes = [
  { label: '20', bin: '' },
  { label: '22', bin: run('bash', [join(root, 'scripts/node-version.sh'), '22']).trim() },
];
const nodeEnv = (bin) => ({
  ...process.env,
  PATH: bin ? `${bin}:${process.env.PATH}` : process.env.PATH,
});

// The TypeScript compilers, installed once.
const compilers = join(work, 'typescript');
for (const version of TYPESCRIPT) {
  mkdirSync(join(compilers, version), { recursive: true });
  writeFileSync(join(compilers, version, 'package.json'), '{"private":true}');
  npm(['install', `typescript@${version}`], join(compilers, version));
}
const tsc = (version) => join(compilers, version, 'node_modules/typescript/bin/tsc');

for (const p of checked) {
  const name = p.json.name;
  const deps = Object.keys(p.json.dependencies ?? {});
  const peers = Object.keys(p.json.peerDependencies ?? {});

  check(`${name}: the tarball carries ${SHIPPED.join(', ')}`, () => {
    const missing = SHIPPED.filter((f) => !p.packedFiles.includes(f));
    if (missing.length) throw new Error(`not in the tarball: ${missing.join(', ')}`);
  });
  check(`${name}: dependencies are what the built code imports`, () => {
    const imported = new Set();
    for (const f of filesUnder(join(p.folder, 'dist')))
      for (const n of importsOf(f)) imported.add(n);
    imported.delete(name);
    const declared = new Set([...deps, ...peers]);
    const missing = [...imported].filter((n) => !declared.has(n) && !declared.has(`@types/${n}`));
    const stray = deps.filter((d) => !imported.has(d) && !imported.has(d.replace(/^@types\//, '')));
    if (missing.length || stray.length) {
      throw new Error(
        `imported, not declared: ${missing.join(', ') || '-'}; declared, never imported: ${stray.join(', ') || '-'}`,
      );
    }
  });
  check(`${name}: publint`, () => {
    const out = run('npx', ['publint', 'run', p.tarball, '--level', 'warning', '--strict'], {
      cwd: root,
    });
    return out.includes('All good') ? '' : out.trim();
  });
  check(`${name}: are the types wrong (ESM only)`, () => {
    run('npx', ['attw', p.tarball, '--profile', 'esm-only', '--format', 'table-flipped'], {
      cwd: root,
    });
  });

  // An empty project with the package, the Switchyard packages it needs, and its peers.
  const project = join(work, p.dir);
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ private: true, type: 'module' }));
  const needed = new Set([name]);
  for (const n of needed) {
    const dependencies = byName.get(n)?.json.dependencies ?? {};
    for (const d of Object.keys(dependencies)) if (byName.has(d)) needed.add(d);
  }
  let installed = false;
  check(`${name}: installs from its tarball alone`, () => {
    npm(
      ['install', ...[...needed].map((n) => byName.get(n).tarball), ...peers, ...USER_DEPS],
      project,
    );
    installed = true;
  });
  if (!installed) continue;

  // One module importing every entry of the export map, type-checked and run.
  const subpaths = Object.keys(p.json.exports).filter((s) => s !== './package.json');
  const specifiers = subpaths.map((s) => (s === '.' ? name : `${name}/${s.slice(2)}`));
  writeFileSync(
    join(project, 'entries.ts'),
    `${specifiers.map((s, i) => `import * as entry${i} from '${s}';`).join('\n')}\n` +
      `console.log([${specifiers.map((_, i) => `Object.keys(entry${i}).length`).join(', ')}].join(' '));\n`,
  );
  writeFileSync(
    join(project, 'entries.cts'),
    `${specifiers.map((s, i) => `const entry${i} = require('${s}') as object;`).join('\n')}\n` +
      `console.log([${specifiers.map((_, i) => `Object.keys(entry${i}).length`).join(', ')}].join(' '));\n`,
  );
  const consumers = [];
  if (name === '@switchyard/core') consumers.push('app.ts');
  if (name === '@switchyard/driver-postgres') consumers.push('postgres.ts');
  for (const c of consumers) cpSync(join(root, 'scripts/consumer', c), join(project, c));
  cpSync(join(root, 'scripts/consumer/tsconfig.json'), join(project, 'tsconfig.json'));

  for (const version of TYPESCRIPT) {
    check(`${name}: tsc ${version} --strict, skipLibCheck false`, () => {
      const emit = version === TYPESCRIPT[0] ? [] : ['--noEmit'];
      run('node', [tsc(version), '-p', 'tsconfig.json', ...emit], { cwd: project });
    });
  }
  if (name === '@switchyard/cli') cliChecks(project);
  for (const { label, bin } of nodes) {
    const env = nodeEnv(bin);
    check(`${name}: import on Node ${label}`, () =>
      run('node', ['dist/entries.js'], { cwd: project, env }).trim(),
    );
    check(`${name}: require() on Node ${label}`, () =>
      run('node', ['dist/entries.cjs'], { cwd: project, env }).trim(),
    );
    for (const c of consumers) {
      const schema = `switchyard_consumer_${randomBytes(4).toString('hex')}`;
      check(`${name}: ${c} on Node ${label}`, () => {
        try {
          return run('node', [`dist/${c.replace(/\.ts$/, '.js')}`, schema], {
            cwd: project,
            env,
          }).trim();
        } finally {
          if (c === 'postgres.ts') dropSchema(schema);
        }
      });
    }
  }
}

/**
 * The installed `switchyard` bin, as a user outside the repository runs it: without `--jobs` it
 * says to pass one (the default example jobs are not installed), and with a jobs file of the
 * user's it runs, on the embedded store in the project's folder.
 */
function cliChecks(project) {
  const bin = join(project, 'node_modules/@switchyard/cli/bin/switchyard.js');
  const env = { ...process.env, DATABASE_URL: '', SWITCHYARD_DATA_DIR: join(project, '.data') };
  writeFileSync(
    join(project, 'jobs.mjs'),
    `import { defineJob, defineTask, stage } from '@switchyard/core';
export const hello = defineJob({
  name: 'hello',
  stages: [stage({ name: 'only', task: defineTask({ name: 'hi', handler: () => 'hi' }), fanOut: () => [1] })],
});
`,
  );
  check('@switchyard/cli: without --jobs the bin says to pass it', () => {
    const r = spawnSync(process.execPath, [bin, 'metrics', '--json'], {
      cwd: project,
      env,
      encoding: 'utf8',
    });
    if (r.status !== 3 || !r.stdout.includes('--jobs'))
      throw new Error(`exit ${r.status}: ${r.stdout}${r.stderr}`);
  });
  check('@switchyard/cli: with --jobs a jobs file of its own, the bin runs', () => {
    const out = run(
      process.execPath,
      [bin, 'submit', 'hello', '--watch', '--json', '--jobs', './jobs.mjs'],
      {
        cwd: project,
        env,
      },
    );
    if (!out.includes('"succeeded"')) throw new Error(out);
  });
}

/** Drops the schema a Postgres consumer created (only that one). */
function dropSchema(schema) {
  const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  run('psql', [url, '-q', '-c', `DROP SCHEMA IF EXISTS ${schema} CASCADE`]);
}

if (!keep) rmSync(work, { recursive: true, force: true });
const seconds = ((Date.now() - started) / 1000).toFixed(0);
console.log(
  failures.length
    ? `\n${failures.length} package checks failed (${seconds} s):\n${failures.map((f) => `  ${f}`).join('\n')}`
    : `\nall package checks passed (${seconds} s)${keep ? `; projects in ${work}` : ''}`,
);
process.exit(failures.length ? 1 : 0);
