/** JSON shapes of the dashboard API, as the page receives them (dates are ISO strings). */

export type JobStatus = 'scheduled' | 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export interface ErrorInfo {
  code?: string;
  message: string;
  name?: string;
}
export interface JobSummary {
  id: string;
  name: string;
  status: JobStatus;
  transport: string;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  currentStage?: number;
  error?: ErrorInfo;
}
export interface JobPage {
  jobs: JobSummary[];
  nextCursor?: string;
}
export interface StageView {
  index: number;
  name: string;
  status: string;
  total: number;
  sealed: boolean;
  pending: number;
  running: number;
  succeeded: number;
  failed: number;
  startedAt?: string;
  completedAt?: string;
  durationMs?: number;
}
export interface JobHeader {
  id: string;
  name: string;
  status: JobStatus;
  transport: string;
  priority: 'high' | 'normal' | 'low';
  currentStage?: { index: number; name: string };
  stages: StageView[];
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  error?: ErrorInfo;
  params: string;
  result?: string;
}
export interface FailedTask {
  id: string;
  stage: number;
  index: number;
  attempts: number;
  error?: ErrorInfo;
  finishedAt?: string;
}
export interface JobDetail extends JobHeader {
  failedTasks: FailedTask[];
  results: { stage: number; index: number; result: string }[];
}
export interface JobProgress {
  id: string;
  status: JobStatus;
  stageIndex?: number;
  stageName?: string;
  stageCount: number;
  total: number;
  sealed: boolean;
  succeeded: number;
  failed: number;
  running: number;
  pending: number;
}
export interface PathMetrics {
  transport: string;
  jobs: {
    total: number;
    queued: number;
    running: number;
    succeeded: number;
    failed: number;
    cancelled: number;
  };
  jobLatencyMs: { mean: number | null; p95: number | null };
  queueWaitMs: { mean: number | null; p95: number | null };
  tasksPerSecond: number | null;
  tasks: { total: number; succeeded: number; failed: number };
  retries: number;
  timeouts: number;
  poisoned: number;
  redrives: Record<string, number>;
}
export interface PathComparison {
  transport: string;
  totals: PathMetrics;
  window: {
    jobs: number;
    succeeded: number;
    failed: number;
    latencyP50Ms: number | null;
    latencyP95Ms: number | null;
    truncated: boolean;
    latencySource: 'window' | 'store';
  };
}
export interface PathsReport {
  generatedAt: string;
  window: string;
  windowStart?: string;
  paths: PathComparison[];
  throughput: { at: number[]; tasksPerSecond: Record<string, (number | null)[]> };
  latency: Record<string, { at: number[]; ms: number[] }>;
}
export interface DeadLetter {
  queue: 'stage' | 'task';
  id: string;
  body: string;
  reason: string;
  description?: string;
  deadLetteredAt?: string;
}
