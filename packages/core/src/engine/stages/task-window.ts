/**
 * The fairness window (`batching.window`): at most `window` of a stage's tasks wait in the
 * transport's queue — released, and neither running on a worker nor finished (on every transport
 * but one claiming the store's task rows, whose claims take the offered stages in turn instead).
 * The fan-out inserts every task but sends only the ones the store releases; each barrier batch
 * that took tasks of a stage (claims, pack admissions) or finished some asks the store to release
 * the next ones, whose messages this module sends. Jobs sharing a transport therefore interleave
 * in its queue: a job submitted behind a huge one waits for at most a window of its tasks, while
 * workers taking tasks make room at once, so a fleet of any size fills up.
 *
 * Releases run in the background, one at a time per Switchyard, each covering every stage that
 * made room since the last: the barrier's callers never wait for them. What a crash or a failure
 * leaves unreleased is released again by the stage's next batch or, when none is left, by the
 * reconciler's pass ({@link TaskWindow.sweep}); a released task whose message was lost is found by
 * `findStuck` as any other.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Context, trace } from '@opentelemetry/api';
import { toErrorInfo } from '../../errors.js';
import type { ReleasedTasks, StageWindow } from '../../store.js';
import { type TraceFields, traceFieldsOf } from '../../telemetry/trace-context.js';
import { sendBatched } from '../batching.js';
import type { EngineContext } from '../context.js';
import { DEFAULTS } from '../defaults.js';
import { taskMessages } from '../outbox.js';

/** A stage of a job, as a release asks for it. */
export interface StageKey {
  jobId: string;
  stage: number;
}

export class TaskWindow {
  /** Stages that made room since the last release, by `jobId:stage`. */
  private pending = new Map<string, StageKey>();
  private pumping: Promise<void> | undefined;
  /** When the last background release started (`performance.now()`). */
  private lastRelease = Number.NEGATIVE_INFINITY;
  private closed = false;

  /**
   * False when no transport of this Switchyard is windowed, so nothing is ever released. Read at
   * the first batch's call, after the engine's init marked the transports claiming task rows.
   */
  private windowed: boolean | undefined;

  constructor(private readonly ctx: EngineContext) {}

  /**
   * The window of a job's transport, or `undefined` when its tasks are all sent as they are
   * inserted (`batching.window: false`, or a transport this Switchyard does not configure).
   */
  windowOf(transport: string): number | undefined {
    const state = this.ctx.settings.transports.get(transport);
    // A transport claiming task rows interleaves jobs by its claim order instead.
    return state?.rowClaims ? undefined : state?.policy.window;
  }

  /**
   * Tasks of these stages left the queue (a worker took them) or finished: the next ones are
   * released in the background.
   */
  freed(stages: readonly StageKey[]): void {
    this.windowed ??= [...this.ctx.settings.transports.keys()].some(
      (name) => this.windowOf(name) !== undefined,
    );
    if (this.closed || !this.windowed || stages.length === 0) return;
    for (const key of stages) this.pending.set(`${key.jobId}:${key.stage}`, key);
    this.kick();
  }

  /**
   * Starts the background releases unless they run. A pump that ends looks again: stages added
   * between its last look and its end would otherwise wait for the stage's next batch, of which
   * there may be none.
   */
  private kick(): void {
    if (this.pumping || this.pending.size === 0 || this.closed) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      this.kick();
    });
  }

  /**
   * Releases and sends at once (the fan-out's own releases, and the reconciler's sweep); returns
   * how many tasks and messages it sent.
   */
  async release(windows: readonly StageWindow[], options: ReleaseOptions = {}): Promise<Sent> {
    const sent = { tasks: 0, messages: 0 };
    if (windows.length === 0) return sent;
    const released = await this.ctx.store.releaseTasks(windows);
    const counts = await Promise.all(released.map((r) => this.send(r, options)));
    for (const messages of counts) sent.messages += messages;
    for (const r of released) sent.tasks += r.tasks.length;
    return sent;
  }

  /**
   * The reconciler's pass: releases what the running jobs' current stages may release, for a
   * stage whose finished tasks' release was lost (a crash after their outcomes were recorded,
   * before the release). Returns how many tasks it sent.
   */
  async sweep(): Promise<number> {
    const { store } = this.ctx;
    let sent = 0;
    let cursor: string | undefined;
    do {
      const page = await store.listJobs({
        status: ['running'],
        limit: DEFAULTS.window.sweepPageSize,
        ...(cursor === undefined ? {} : { cursor }),
      });
      const windows: StageWindow[] = [];
      for (const job of page.jobs) {
        const window = this.windowOf(job.transport);
        if (window !== undefined && job.currentStage !== undefined)
          windows.push({ jobId: job.id, stage: job.currentStage, window });
      }
      sent += (await this.release(windows)).tasks;
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    return sent;
  }

  /** Waits for the release in progress, and starts no other. */
  async close(): Promise<void> {
    this.closed = true;
    this.pending.clear();
    await this.pumping;
  }

  /**
   * Resolves once the releases asked for so far are sent (or have failed, to be asked again
   * later): a host that runs one message per invocation (`handle()`) waits for it, so that no
   * release is left to a process that may be frozen once the invocation returns.
   */
  idle(): Promise<void> {
    return this.pumping ?? Promise.resolve();
  }

  private async pump(): Promise<void> {
    while (this.pending.size > 0 && !this.closed) {
      // Releases a little apart gather the room made meanwhile: fewer, larger statements
      // and sends, where one per barrier batch cost the store more than the window saved.
      const wait = this.lastRelease + DEFAULTS.window.gatherMs - performance.now();
      if (wait > 0) await sleep(wait);
      this.lastRelease = performance.now();
      const keys = [...this.pending.values()];
      this.pending.clear();
      try {
        await this.release(await this.windows(keys));
      } catch (err) {
        // Asked again after a pause: the stages' tasks are still unreleased.
        this.ctx.logger.warn('could not release tasks; retrying', {
          error: toErrorInfo(err).message,
        });
        this.retryLater(keys);
        return;
      }
    }
  }

  private retryLater(keys: readonly StageKey[]): void {
    const timer = setTimeout(() => this.freed(keys), DEFAULTS.window.retryMs);
    timer.unref();
  }

  /** The windows of the stages' jobs' transports; stages of unwindowed transports are dropped. */
  private async windows(keys: readonly StageKey[]): Promise<StageWindow[]> {
    const windows: StageWindow[] = [];
    for (const { jobId, stage } of keys) {
      const known = this.ctx.directory.info(jobId);
      const job = known instanceof Promise ? await known : known;
      const window = job && this.windowOf(job.transport);
      if (window !== undefined) windows.push({ jobId, stage, window });
    }
    return windows;
  }

  /** Sends released tasks' messages; returns how many. */
  private async send(
    { jobId, stage, tasks }: ReleasedTasks,
    { trace: fields, spread }: ReleaseOptions,
  ): Promise<number> {
    const known = this.ctx.directory.info(jobId);
    const job = known instanceof Promise ? await known : known;
    if (!job) return 0;
    const target = this.ctx.transportOf(job.transport);
    // The released tasks' messages join the job's trace, as the fan-out's do.
    fields ??= traceOf(this.ctx.telemetry.jobContext(jobId));
    const messages = taskMessages(
      { target, jobId, stage, resumed: false, trace: fields, priority: job.priority, spread },
      tasks,
    );
    const { telemetry } = this.ctx;
    telemetry.fanOutTasks.add(tasks.length, telemetry.transport(job.transport).base);
    await sendBatched(target, messages);
    return messages.length;
  }
}

/** How {@link TaskWindow.release} sends what the store released. */
export interface ReleaseOptions {
  /**
   * The sender's span context, which the messages carry. @defaultValue the context this worker
   * last saw in each job's trace
   */
  trace?: TraceFields | undefined;
  /** The release is a fan-out chunk's: spread over messages as `taskMessages` spreads one. */
  spread?: boolean;
}

/** What a release sent. */
export interface Sent {
  tasks: number;
  messages: number;
}

function traceOf(context: Context): TraceFields | undefined {
  const span = trace.getSpan(context);
  return span ? traceFieldsOf(span) : undefined;
}
