/**
 * The `switchyard` command line as a library: {@link runCli}, and {@link createYardFromEnv} — the
 * environment configuration the CLI, the container host and the Functions example share.
 * @module
 */
export { type CliIo, EXIT, runCli, USAGE } from './cli.js';
export { createYardFromEnv, type YardFromEnv, type YardFromEnvOptions } from './env.js';
export { DEFAULT_JOBS_MODULE, loadJobs, type NamedJob } from './jobs.js';
export { loadSchedules } from './schedules.js';
