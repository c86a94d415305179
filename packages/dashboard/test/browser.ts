import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';

/** Debian's Chromium; Playwright's own browser downloads cannot run here. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** True when Chromium is installed; with REQUIRE_SERVICES=1 a missing one throws. */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.REQUIRE_SERVICES === '1')
    throw new Error(
      `REQUIRE_SERVICES=1 but Chromium is missing at ${CHROMIUM}: apt-get install -y chromium`,
    );
  console.warn(
    `[dashboard browser tests] Chromium missing at ${CHROMIUM}: skipping the browser tests (apt-get install -y chromium). Set REQUIRE_SERVICES=1 to fail instead.`,
  );
  return false;
}

/** Headless Chromium with a fresh profile, no network besides the page's own server. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Where screenshots go: `docs/` (the README's images) with `DASHBOARD_SCREENSHOTS=docs`, else
 * `test-results/` (ignored), so a test run leaves the committed images alone.
 */
export async function screenshotPath(name: string): Promise<string> {
  const dir =
    process.env.DASHBOARD_SCREENSHOTS === 'docs'
      ? join(root, 'docs')
      : join(root, 'test-results', 'screenshots');
  await mkdir(dir, { recursive: true });
  return join(dir, name);
}
