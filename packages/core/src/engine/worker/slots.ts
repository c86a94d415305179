/**
 * A worker loop's task slots. `concurrency` bounds the handlers running at once, counted in
 * tasks, not messages: a pack of 64 tasks is 64 of them, and each of its tasks gives its slot back
 * as its handler ends, so one slow task of a pack holds one slot, not the pack's 64. The loop asks
 * the transport for as many messages as its free slots need at the tasks per message seen lately;
 * a pack that brings more tasks than there are free slots waits for them task by task.
 */
export class TaskSlots {
  /** Tasks of received messages whose handlers have not ended (a message counts 1 until read). */
  private held = 0;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  /** Tasks per message lately (a moving average), starting from the configured pack size. */
  private perMessage: number;

  constructor(
    readonly capacity: number,
    expectedPerMessage: number,
    /** Called whenever slots may have come free. */
    private readonly freed: () => void,
  ) {
    this.perMessage = Math.max(1, expectedPerMessage);
  }

  /** Messages to ask for now, beside `reserved` tasks already asked for. */
  wanted(reserved: number): number {
    return this.messages(this.capacity - this.held - reserved);
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

  /** Waits for a handler slot; `undefined` when one is free now (no promise on the hot path). */
  enter(): Promise<void> | undefined {
    if (this.running < this.capacity) {
      this.running++;
      return undefined;
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** A handler ended: its slot goes to the next task waiting, if any. */
  leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
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

  /** Waits for a handler slot for one of its tasks; `undefined` when one is free now. */
  handlerStarting(): Promise<void> | undefined {
    return this.slots.enter();
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
