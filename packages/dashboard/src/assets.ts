import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** The bundled single-page app: `app.js` and `app.css`, built by `scripts/build-app.mjs`. */
export interface AppAssets {
  files: Map<string, { body: Uint8Array; type: string }>;
  /** Short content hash, appended to asset URLs so browsers may cache them for good. */
  version: string;
}

const TYPES: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/**
 * Where the bundle lives: `dist/app` next to the built module (`dist/index.js`), or the package's
 * `dist/app` when running from sources.
 */
export function defaultAssetsDir(): string {
  const candidates = [new URL('./app/', import.meta.url), new URL('../dist/app/', import.meta.url)];
  for (const url of candidates) {
    const dir = fileURLToPath(url);
    if (existsSync(`${dir}app.js`)) return dir;
  }
  return fileURLToPath(candidates[candidates.length - 1]!);
}

/** Reads the bundle once. @throws {Error} when it has not been built (`npm run build`). */
export async function loadAssets(dir: string): Promise<AppAssets> {
  const files = new Map<string, { body: Uint8Array; type: string }>();
  const hash = createHash('sha256');
  for (const [name, type] of Object.entries(TYPES)) {
    let body: Uint8Array;
    try {
      body = await readFile(`${dir.replace(/\/?$/, '/')}${name}`);
    } catch {
      throw new Error(
        `the dashboard's bundle is missing (${dir}${name}): run "npm run build" in @switchyard/dashboard`,
      );
    }
    files.set(name, { body, type });
    hash.update(body);
  }
  return { files, version: hash.digest('hex').slice(0, 12) };
}

/** The page that loads the app; it carries no data and no inline script (the CSP forbids both). */
export function indexHtml(options: { basePath: string; version: string; title: string }): string {
  const base = escapeAttr(options.basePath);
  const v = options.version;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${escapeAttr(options.title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${base}/assets/app.css?v=${v}">
<script type="module" src="${base}/assets/app.js?v=${v}"></script>
</head>
<body>
<div id="app"><noscript>The Switchyard dashboard needs JavaScript.</noscript></div>
</body>
</html>
`;
}

function escapeAttr(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
