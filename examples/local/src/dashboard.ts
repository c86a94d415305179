/** The demo's `--dashboard`: the dashboard served on loopback while the job runs. */

import { existsSync } from 'node:fs';
import type { Switchyard } from '@switchyard/core';
import type { Transport } from '@switchyard/core/driver';
import {
  createDashboardHandler,
  type ServedDashboard,
  serveDashboard,
} from '@switchyard/dashboard';

/**
 * Serves the dashboard for the demo's Switchyard on 127.0.0.1 without sign-in: the address is
 * reachable from this machine only, and actions still need the page's CSRF token.
 */
export async function startDashboard(options: {
  yard: Switchyard;
  transports: readonly Transport[];
  port: number;
}): Promise<ServedDashboard> {
  await ensureBundle();
  const handler = createDashboardHandler(options.yard, {
    auth: { none: true },
    transports: options.transports,
  });
  return serveDashboard({ handler, port: options.port, host: '127.0.0.1' });
}

/** The demo runs from sources: build the dashboard's bundle when this checkout has none yet. */
async function ensureBundle(): Promise<void> {
  const packageDir = new URL('../../../packages/dashboard/', import.meta.url);
  if (existsSync(new URL('dist/app/app.js', packageDir))) return;
  process.stderr.write('building the dashboard bundle …\n');
  const script: { buildApp(): Promise<void> } = await import(
    new URL('scripts/build-app.mjs', packageDir).href
  );
  await script.buildApp();
}
