import { createSwitchyard, memoryStore, memoryTransport } from '@switchyard/core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboardHandler, type ServedDashboard, serveDashboard } from '../src/index.js';
import { chromiumAvailable, launchChromium, screenshotPath } from './browser.js';
import { control, postgresAvailable, type TestYard, testYard } from './fixtures.js';

const TOKEN = 'browser-test-token';
/** Runs in the page if any injected markup ever executes. */
const XSS = `<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">`;
const available = (await postgresAvailable()) && chromiumAvailable();
/** Which operations this Switchyard offers: listing jobs (its own or its store's), retrying. */
const { listing, retrying } = (() => {
  const probe = createSwitchyard({
    jobs: [],
    store: memoryStore(),
    transports: [memoryTransport()],
  });
  const has = (o: object, name: string) =>
    typeof (o as Record<string, unknown>)[name] === 'function';
  return {
    listing: has(probe, 'listJobs') || has(probe.store, 'listJobs'),
    retrying: has(probe, 'retry'),
  };
})();

describe.skipIf(!available)('dashboard in headless Chromium (PostgreSQL store)', () => {
  let env: TestYard;
  let served: ServedDashboard;
  let browser: Browser;
  let page: Page;
  const stop = new AbortController();
  let working: Promise<void>;

  beforeAll(async () => {
    env = await testYard();
    working = env.yard.work({ concurrency: 16, signal: stop.signal, waitMs: 100 });
    served = await serveDashboard({
      handler: createDashboardHandler(env.yard, {
        auth: { bearerTokens: [TOKEN] },
        transports: env.transports,
        liveIntervalMs: 300,
        metricsSampleMs: 500,
      }),
      port: 0,
    });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on('dialog', (dialog) => {
      throw new Error(`unexpected dialog: ${dialog.message()}`);
    });
    await page.goto(served.url);
    await page.getByLabel('API token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
  });
  afterAll(async () => {
    await browser?.close();
    await served?.close();
    stop.abort();
    await working;
    await env?.close();
  });

  const openJob = async (jobId: string) => {
    await page.goto(`${served.url}/#/jobs/${encodeURIComponent(jobId)}`);
    await page.locator('#job-title').waitFor();
  };
  const confirm = async (button: string, confirmLabel: string) => {
    await page.getByRole('button', { name: button, exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: confirmLabel, exact: true }).click();
    await dialog.waitFor({ state: 'hidden' });
  };

  it('shows a job live until each stage’s progress bar reaches 100 %', async () => {
    const { jobId } = await env.yard.submit(
      'squares',
      { n: 400, workMs: 20 },
      { priority: 'high' },
    );
    await openJob(jobId);
    await expect
      .poll(() => page.locator('.facts div', { hasText: 'Priority' }).locator('dd').textContent())
      .toBe('high');
    const bars = page.getByRole('progressbar');
    await expect.poll(() => bars.count()).toBe(2);
    // While it runs the first bar moves without a reload.
    await expect
      .poll(async () => Number(await bars.first().getAttribute('aria-valuenow')), {
        timeout: 20_000,
      })
      .toBeGreaterThan(0);
    await page.locator('.badge', { hasText: 'succeeded' }).first().waitFor({ timeout: 60_000 });
    expect(await bars.nth(0).getAttribute('aria-valuenow')).toBe('100');
    expect(await bars.nth(1).getAttribute('aria-valuenow')).toBe('100');
    await expect.poll(() => page.locator('.results pre').last().textContent()).toContain('"total"');
    await page.screenshot({ path: await screenshotPath('job.png'), fullPage: false });
  });

  it('shows a poisoned task’s last error and attempts; re-running it succeeds', async () => {
    control.healed = false;
    const { jobId } = await env.yard.submit('flaky', {
      n: 6,
      poison: [3],
      message: 'disk full on /data',
    });
    await openJob(jobId);
    const row = page.getByRole('row', { name: /disk full on \/data/ });
    await row.waitFor({ timeout: 30_000 });
    expect(await row.textContent()).toContain(`${jobId}.0.3`);
    expect(await row.getByRole('cell').nth(2).textContent()).toBe('2');
    await page.locator('h1 .badge', { hasText: 'failed' }).waitFor({ timeout: 30_000 });
    await page.screenshot({ path: await screenshotPath('failed.png') });
    if (!retrying) return;
    control.healed = true;
    await confirm('Re-run failed tasks', 'Re-run');
    await page.getByRole('status').filter({ hasText: 'sent again' }).waitFor();
    await page.locator('h1 .badge', { hasText: 'succeeded' }).waitFor({ timeout: 30_000 });
    expect(await page.getByText('No failed task.').isVisible()).toBe(true);
  });

  it('cancels a running job behind a confirmation', async () => {
    const { jobId } = await env.yard.submit('squares', { n: 3000, workMs: 300, label: 'long' });
    await openJob(jobId);
    await page.locator('h1 .badge', { hasText: 'running' }).waitFor({ timeout: 20_000 });
    await page.getByRole('button', { name: 'Cancel job', exact: true }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Back' }).click();
    expect((await env.yard.getJob(jobId))?.status).toBe('running');
    await confirm('Cancel job', 'Cancel job');
    await page.locator('h1 .badge', { hasText: 'cancelled' }).waitFor({ timeout: 20_000 });
    expect((await env.yard.getJob(jobId))?.status).toBe('cancelled');
  });

  it('renders params, errors and dead letters containing markup as text: nothing executes', async () => {
    const a = await env.yard.submit('squares', { n: 2, label: XSS });
    control.healed = false; // the re-run test before this one healed the poisoned tasks
    const b = await env.yard.submit('flaky', { n: 2, poison: [0, 1], message: XSS });
    await env.transports[0]!.send('task', [{ body: XSS, messageId: 'xss-letter' }]);
    await openJob(a.jobId);
    await expect
      .poll(() => page.locator('pre.json').first().textContent())
      .toContain('"label": "<script>window.__xss = 1</script><img src=x onerror=');
    await openJob(b.jobId);
    await page
      .locator('.error-cell', { hasText: 'window.__xss' })
      .first()
      .waitFor({ timeout: 30_000 });
    expect(await page.locator('.error-cell').first().textContent()).toContain(XSS);
    await page.goto(`${served.url}/#/dead-letters`);
    await page
      .locator('pre.json', { hasText: 'window.__xss' })
      .first()
      .waitFor({ timeout: 20_000 });
    if (listing) {
      await page.goto(`${served.url}/#/`);
      await page.getByRole('link', { name: /flaky/ }).first().waitFor();
    }
    expect(await page.evaluate(() => (window as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.locator('main img, main script').count()).toBe(0);
  });

  it('lists a dead letter with its reason and replays it', async () => {
    await env.transports[0]!.send('task', [{ body: 'not an envelope', messageId: 'bad-1' }]);
    await page.goto(`${served.url}/#/dead-letters`);
    const letter = page.locator('.letter', { hasText: 'not an envelope' });
    await expect
      .poll(
        async () => {
          await page.getByRole('button', { name: 'Refresh' }).click();
          return letter.count();
        },
        { timeout: 20_000 },
      )
      .toBeGreaterThan(0);
    expect(await letter.first().textContent()).toContain('MalformedMessage');
    await page.screenshot({ path: await screenshotPath('dead-letters.png') });
    const id = (await letter.first().locator('code').first().textContent())!;
    await confirm(`Replay ${id}`, 'Replay');
    await page.getByRole('status').filter({ hasText: '1 message(s) sent back' }).waitFor();
  });

  it('compares the paths after jobs on two transports', async () => {
    await Promise.all([
      env.yard
        .submit('squares', { n: 300, label: 'pg' }, { transport: 'postgres' })
        .then((r) => env.yard.waitFor(r.jobId)),
      env.yard
        .submit('squares', { n: 300, label: 'b' }, { transport: 'queue-b' })
        .then((r) => env.yard.waitFor(r.jobId)),
    ]);
    await page.goto(`${served.url}/#/paths`);
    const table = page.locator('table.figures');
    await table.waitFor({ timeout: 20_000 });
    await expect.poll(() => table.getByRole('row').count()).toBe(3);
    expect(await table.getByRole('rowheader', { name: 'postgres' }).count()).toBe(1);
    expect(await table.getByRole('rowheader', { name: 'queue-b' }).count()).toBe(1);
    const throughput = page.locator('.card', { hasText: 'Throughput' });
    expect(await throughput.locator('.bar-value').allTextContents()).toEqual([
      expect.stringMatching(/tasks\/s$/),
      expect.stringMatching(/tasks\/s$/),
    ]);
    await page.locator('.chart canvas').first().waitFor();
    await page.screenshot({ path: await screenshotPath('paths.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: await screenshotPath('paths-phone.png') });
    await page.setViewportSize({ width: 1280, height: 860 });
    if (listing) {
      await page.goto(`${served.url}/#/`);
      await page
        .getByRole('link', { name: /squares/ })
        .first()
        .waitFor();
      await page.screenshot({ path: await screenshotPath('jobs.png') });
    }
  });
});
