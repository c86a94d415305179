// The public API of every published entry point, as API Extractor reports committed under
// packages/<package>/api/<entry>.api.md. Reads the built declarations (run `npm run build` first).
//
//   node scripts/api-report.mjs           check: fails when a surface differs from its report
//   node scripts/api-report.mjs --update  rewrites the reports (npm run api:update)
//   add --verbose to print every API Extractor message
//
// Exits non-zero when a report differs (check mode) or API Extractor reports an error.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor';

const root = resolve(import.meta.dirname, '..');
const update = process.argv.includes('--update');
const verbose = process.argv.includes('--verbose');
const tempFolder = mkdtempSync(join(tmpdir(), 'switchyard-api-'));

/** Every published package's export map entries that have declarations. */
function entries() {
  const found = [];
  for (const dir of readdirSync(join(root, 'packages'))) {
    const folder = join(root, 'packages', dir);
    const pkg = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8'));
    if (pkg.private) continue;
    for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
      if (typeof target !== 'object' || !target.types) continue;
      const entry = subpath === '.' ? 'index' : subpath.slice(2).replaceAll('/', '-');
      found.push({ pkg: pkg.name, folder, entry, types: join(folder, target.types) });
    }
  }
  return found;
}

let failed = 0;
for (const { pkg, folder, entry, types } of entries()) {
  mkdirSync(join(folder, 'api'), { recursive: true });
  const config = ExtractorConfig.prepare({
    configObjectFullPath: join(folder, 'api-extractor.json'),
    packageJsonFullPath: join(folder, 'package.json'),
    configObject: {
      projectFolder: folder,
      mainEntryPointFilePath: types,
      compiler: {
        overrideTsconfig: {
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            lib: ['ES2023', 'DOM'],
            types: ['node'],
            strict: true,
            skipLibCheck: true,
          },
          files: [types],
        },
      },
      apiReport: {
        enabled: true,
        reportFileName: entry,
        reportFolder: join(folder, 'api'),
        reportTempFolder: tempFolder,
      },
      docModel: { enabled: false },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      messages: {
        compilerMessageReporting: { default: { logLevel: 'warning' } },
        extractorMessageReporting: {
          default: { logLevel: 'none' },
          // A type the surface uses but the entry does not export: listed in the report.
          'ae-forgotten-export': { logLevel: 'warning', addToApiReportFile: true },
        },
        tsdocMessageReporting: { default: { logLevel: 'none' } },
      },
    },
  });
  const result = Extractor.invoke(config, {
    localBuild: update,
    messageCallback: (message) => {
      // The report itself lists what changed; the console only needs the summary below.
      if (verbose) console.log(message.text);
      if (message.category !== 'Compiler') message.handled = true;
    },
  });
  const label = `${pkg}${entry === 'index' ? '' : `/${entry.replaceAll('-', '/')}`}`;
  if (!result.succeeded || (!update && result.apiReportChanged)) {
    failed++;
    console.log(
      `FAIL ${label}: ${result.apiReportChanged ? `the API differs from packages/${folder.split('/').pop()}/api/${entry}.api.md (run npm run api:update and commit the report if the change is intended)` : `${result.errorCount} errors`}`,
    );
  } else {
    console.log(`ok   ${label}${update && result.apiReportChanged ? ' (report updated)' : ''}`);
  }
}
process.exit(failed ? 1 : 0);
