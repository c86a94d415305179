/**
 * The Switchyard dashboard: a Web-standard `Request` → `Response` handler serving a single-page
 * app (Jobs, Job, Paths, Dead letters) and the JSON API and live updates it needs.
 * @module
 */
export {
  CONTENT_SECURITY_POLICY,
  createDashboardHandler,
  type DashboardHandler,
  type DashboardOptions,
} from './handler.js';
export type { DashboardYard, JobPage, JobSummary, ListJobsFilter } from './operations.js';
export type { PathComparison, PathsReport } from './paths.js';
export { type ServeDashboardOptions, type ServedDashboard, serveDashboard } from './serve.js';
export type { JobDetail, JobHeader, JobProgress } from './views.js';
