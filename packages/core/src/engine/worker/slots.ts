import { Turns } from '../../util/turns.js';

/** How a loop's slots are sized; see {@link TaskSlots}. */
export interface TaskSlotsOptions {
  /** Handlers running at once. */
  capacity: number;
  /** Tasks per message to expect until some were seen: the pack size. */
  expectedPerMessage: number;
  /** Most tasks held beyond `capacity`, waiting for a slot (0: none). */
  prefetch: number;
  /** Called whenever slots may have come free. */
  freed: () => void;
  /** Milliseconds, for measuring handler durations. @defaultValue performance.now */
  clock?: () => number;
}

/** A measurement period of the handlers' mean duration: short enough to follow a change of load. */
const PERIOD_MS = 50;
/** Weight of the newest sample in the moving averages. */
const NEWEST = 0.3;

/**
 * A worker loop's task slots. `concurrency` bounds the handlers running at once, counted in
 * tasks, not messages: a pack of 64 tasks is 64 of them, and each of its tasks gives its slot back
 * as its handler ends, so one slow task of a pack holds one slot, not the pack's 64. The loop asks
 * the transport for as many messages as its free slots need at the tasks per message seen lately;
 * a pack that brings more tasks than there are free slots waits for them task by task.
 *
 * **Prefetch.** Beyond its slots, a loop holds as many received tasks as its slots finish in one
 * receive round trip, up to `prefetch`: tasks of a few milliseconds then never wait for the next
 * receive, and each receive, admission and barrier statement covers more of them, while a loop
 * of slow tasks holds next to none that another worker could be running. The round trip and the
 * handlers' mean duration are both measured, as moving averages; until they are, nothing is held
 * beyond the slots.
 *
 * **Turns.** Tasks waiting for a slot take turns by job: a freed slot goes to the next job in
 * rotation, and each job's tasks start in the order they asked. A job's task received behind
 * thousands of prefetched tasks of a big one therefore waits for one task per other waiting job,
 * not for all of them.
 */
export class TaskSlots {
  readonly capacity: number;
  /** Tasks of received messages whose handlers have not ended (a message counts 1 until read). */
  private held = 0;
  private running = 0;
  /** Tasks waiting for a slot, by job: the jobs take turns, each job's tasks in order. */
  private readonly waiting = new Turns<() => void>();
  /** Tasks per message lately (a moving average), starting from the configured pack size. */
  private perMessage: number;
  private readonly prefetchMax: number;
  private readonly freed: () => void;
  private readonly clock: () => number;
  /** Slot-milliseconds spent by handlers and handlers ended, in the current period. */
  private busyMs = 0;
  private ends = 0;
  private changedAt: number;
  private periodStart: number;
  /** Moving averages: a handler's duration and a receive's round trip, ms. */
  private taskMs: number | undefined;
  private roundTripMs: number | undefined;

  constructor(options: TaskSlotsOptions) {
    this.capacity = options.capacity;
    this.perMessage = Math.max(1, options.expectedPerMessage);
    this.prefetchMax = options.prefetch;
    this.freed = options.freed;
    this.clock = options.clock ?? (() => performance.now());
    this.changedAt = this.periodStart = this.clock();
  }

  /** Messages to ask for now, beside `reserved` tasks already asked for. */
  wanted(reserved: number): number {
    return this.messages(this.limit() - this.held - reserved);
  }

  /** Tasks the loop may hold now: its slots and what it prefetches. */
  limit(): number {
    return this.capacity + this.prefetch();
  }

  /** Tasks held beyond the slots now: those the slots finish in one receive round trip. */
  prefetch(): number {
    if (this.prefetchMax === 0) return 0;
    this.measure(this.clock());
    const { taskMs, roundTripMs } = this;
    if (taskMs === undefined || roundTripMs === undefined) return 0;
    const finished = (this.capacity * roundTripMs) / Math.max(taskMs, 0.001);
    return Math.min(this.prefetchMax, Math.floor(finished));
  }

  /** A receive that brought messages took `ms` (a receive that waited for none says nothing). */
  receiveTook(ms: number): void {
    this.roundTripMs =
      this.roundTripMs === undefined ? ms : this.roundTripMs * (1 - NEWEST) + ms * NEWEST;
  }

  /** Messages that carry `tasks` tasks at the size seen lately (0 for none). */
  messages(tasks: number): number {
    return tasks > 0 ? Math.ceil(tasks / this.perMessage) : 0;
  }

  /** Tasks that asking for `messages` messages reserves. */
  reserve(messages: number): number {
    return Math.ceil(messages * this.perMessage);
  }

  /** A received message: it holds one slot until it says how many tasks it carries. */
  received(): HeldMessage {
    this.held++;
    return new HeldMessage(this);
  }

  /** @internal A message turned out to hold `more` tasks beside the slot it took. */
  grow(more: number): void {
    this.held += more;
  }

  /** @internal */
  release(tasks: number): void {
    this.held -= tasks;
    this.freed();
  }

  /** @internal A settled message carried `tasks` tasks. */
  observe(tasks: number): void {
    this.perMessage = this.perMessage * 0.9 + tasks * 0.1;
  }

  /**
   * Waits for a handler slot, taking turns with the other jobs' tasks waiting (`job`: the task's
   * job id); `undefined` when one is free now (no promise on the hot path).
   */
  enter(job = ''): Promise<void> | undefined {
    if (this.running < this.capacity) {
      if (this.prefetchMax > 0) this.account(this.clock());
      this.running++;
      return undefined;
    }
    return new Promise((resolve) => this.waiting.push(job, resolve));
  }

  /** A handler ended: its slot goes to the next task waiting, if any. */
  leave(): void {
    if (this.prefetchMax > 0) {
      this.account(this.clock());
      this.ends++;
    }
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }

  /** Adds the slot time spent since the last change of the running count. */
  private account(now: number): void {
    this.busyMs += this.running * (now - this.changedAt);
    this.changedAt = now;
  }

  /**
   * Folds a finished period into the mean handler duration. A period in which nothing ended
   * counts its busy time as one task's, so handlers that turned slow lower the prefetch before
   * the first of them ends.
   */
  private measure(now: number): void {
    if (now - this.periodStart < PERIOD_MS) return;
    this.account(now);
    if (this.busyMs > 0 || this.ends > 0) {
      const sample = this.busyMs / Math.max(this.ends, 1);
      this.taskMs =
        this.taskMs === undefined ? sample : this.taskMs * (1 - NEWEST) + sample * NEWEST;
    }
    this.busyMs = 0;
    this.ends = 0;
    this.periodStart = now;
  }
}

/** One received message's share of its loop's slots, until it is settled. */
export class HeldMessage {
  /** Tasks it carries, and those of them whose handlers have not ended. */
  private size = 1;
  private tasks = 1;

  constructor(readonly slots: TaskSlots) {}

  /** The message is a pack of `tasks` tasks (called before any of them ends). */
  holds(tasks: number): void {
    this.slots.grow(tasks - this.size);
    this.tasks += tasks - this.size;
    this.size = tasks;
  }

  /**
   * Waits for a handler slot for one of its tasks, in turn with other jobs' tasks (`job`: its job
   * id); `undefined` when one is free now.
   */
  handlerStarting(job?: string): Promise<void> | undefined {
    return this.slots.enter(job);
  }

  /** One of its tasks' handlers ended (or, after waiting for a slot, will not run). */
  handlerEnded(): void {
    this.slots.leave();
    this.taskEnded();
  }

  /** One of its tasks' handlers ended (or will not run). */
  private taskEnded(): void {
    if (this.tasks === 0) return;
    this.tasks--;
    this.slots.release(1);
  }

  /** Settled: whatever it still held is free. */
  ended(): void {
    this.slots.observe(this.size);
    this.slots.release(this.tasks);
    this.tasks = 0;
  }
}
