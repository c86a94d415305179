#!/usr/bin/env node
// Bundles the single-page app (app/main.tsx: Preact, uPlot, the pages and their CSS) into
// dist/app/app.js and dist/app/app.css, and fails when the gzipped total exceeds the budget.
// Usage: node scripts/build-app.mjs [--check]   (--check: only measure an existing bundle)
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** Gzipped bytes the app (JavaScript + CSS) may take: what a first visit downloads. */
export const BUDGET_GZIP_BYTES = 80 * 1024;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'app');

export async function buildApp() {
  const { build } = await import('esbuild');
  await mkdir(outdir, { recursive: true });
  await build({
    entryPoints: { app: join(root, 'app', 'main.tsx') },
    outdir,
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome109', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    logLevel: 'warning',
  });
}

export async function measure() {
  const sizes = {};
  for (const name of ['app.js', 'app.css']) {
    const body = await readFile(join(outdir, name));
    sizes[name] = { bytes: body.length, gzip: gzipSync(body, { level: 9 }).length };
  }
  const gzip = sizes['app.js'].gzip + sizes['app.css'].gzip;
  return { sizes, gzip, budget: BUDGET_GZIP_BYTES, ok: gzip <= BUDGET_GZIP_BYTES };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (!process.argv.includes('--check')) await buildApp();
  const report = await measure();
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  for (const [name, s] of Object.entries(report.sizes))
    console.log(`${name.padEnd(8)} ${kb(s.bytes).padStart(9)}  gzip ${kb(s.gzip).padStart(8)}`);
  console.log(`total gzip ${kb(report.gzip)} of a ${kb(report.budget)} budget`);
  if (!report.ok) {
    console.error('the dashboard bundle is over its budget');
    process.exit(1);
  }
}
