import 'vitest';
import type { TestProject } from 'vitest/node';
import { startAzurite } from './azurite.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Connection string of the shared Azurite, or '' when it could not start (tests skip). */
    azuriteConnectionString: string;
    azuriteUnavailable: string;
  }
}

/** Starts one Azurite for the whole project; each test uses its own queue names. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  try {
    const azurite = await startAzurite();
    project.provide('azuriteConnectionString', azurite.connectionString);
    project.provide('azuriteUnavailable', '');
    return () => azurite.stop();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (process.env.REQUIRE_SERVICES === '1') {
      throw new Error(`REQUIRE_SERVICES=1 but Azurite could not start: ${reason}`);
    }
    console.warn(
      `[driver-storagequeue] Azurite unavailable, Azurite tests will be skipped: ${reason}`,
    );
    project.provide('azuriteConnectionString', '');
    project.provide('azuriteUnavailable', reason);
    return async () => {};
  }
}
