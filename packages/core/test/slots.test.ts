import { describe, expect, it } from 'vitest';
import { TaskSlots } from '../src/engine/worker/slots.js';

describe('TaskSlots', () => {
  it('asks for messages by free task slots at the pack size seen lately', () => {
    let wakes = 0;
    const slots = new TaskSlots({
      capacity: 64,
      expectedPerMessage: 16,
      prefetch: 0,
      freed: () => wakes++,
    });
    expect(slots.wanted(0)).toBe(4);
    expect(slots.wanted(32)).toBe(2);
    const a = slots.received();
    a.holds(16);
    expect(slots.wanted(0)).toBe(3);
    // A pack that brings more than is free over-subscribes: nothing more is asked for.
    const b = slots.received();
    b.holds(60);
    expect(slots.wanted(0)).toBe(0);
    for (let i = 0; i < 16; i++) {
      a.handlerStarting();
      a.handlerEnded();
    }
    a.ended();
    expect(slots.wanted(0)).toBe(1);
    b.ended();
    expect(wakes).toBeGreaterThan(0);
    // Single-task messages bring the expected size down, so a worker configured for packs still
    // asks for enough messages when it is sent one task per message.
    for (let i = 0; i < 60; i++) slots.received().ended();
    expect(slots.wanted(0)).toBeGreaterThan(40);
  });

  it('runs at most `capacity` handlers, the next in line taking a freed slot', async () => {
    const slots = new TaskSlots({
      capacity: 2,
      expectedPerMessage: 1,
      prefetch: 0,
      freed: () => {},
    });
    expect(slots.enter()).toBeUndefined();
    expect(slots.enter()).toBeUndefined();
    const order: string[] = [];
    const third = slots.enter()!.then(() => order.push('third'));
    const fourth = slots.enter()!.then(() => order.push('fourth'));
    await new Promise((r) => setTimeout(r, 5));
    expect(order).toEqual([]);
    slots.leave();
    await third;
    expect(order).toEqual(['third']);
    slots.leave();
    await fourth;
    slots.leave();
    slots.leave();
    // Both slots are free again.
    expect(slots.enter()).toBeUndefined();
    expect(slots.enter()).toBeUndefined();
    expect(slots.enter()).toBeInstanceOf(Promise);
  });

  it("gives freed slots to the waiting jobs in turn: a job's task behind many of another's waits for one", async () => {
    const slots = new TaskSlots({
      capacity: 1,
      expectedPerMessage: 1,
      prefetch: 0,
      freed: () => {},
    });
    expect(slots.enter('big')).toBeUndefined();
    const order: string[] = [];
    const started = [
      ...Array.from({ length: 5 }, (_, i) =>
        slots.enter('big')!.then(() => order.push(`big ${i}`)),
      ),
      slots.enter('small')!.then(() => order.push('small')),
      slots.enter('other')!.then(() => order.push('other')),
    ];
    for (let i = 0; i < 7; i++) {
      slots.leave();
      await new Promise((r) => setTimeout(r, 0));
    }
    await Promise.all(started);
    // Each job's tasks in their order; the jobs take turns.
    expect(order).toEqual(['big 0', 'small', 'other', 'big 1', 'big 2', 'big 3', 'big 4']);
  });
});

describe('TaskSlots prefetch', () => {
  /** Slots on a clock the test moves, with `prefetch` allowed beyond 4 slots. */
  function clocked(prefetch: number) {
    let now = 0;
    const slots = new TaskSlots({
      capacity: 4,
      expectedPerMessage: 1,
      prefetch,
      freed: () => {},
      clock: () => now,
    });
    /**
     * Runs `tasks` handlers of `ms` each, one slot after the other, moving the clock; the loop
     * asks how much to hold after each, as a puller does.
     */
    const run = (tasks: number, ms: number) => {
      for (let i = 0; i < tasks; i++) {
        slots.enter();
        now += ms;
        slots.leave();
        slots.prefetch();
      }
    };
    return { slots, run, advance: (ms: number) => (now += ms) };
  }

  it('holds nothing beyond its slots until a round trip and a handler duration were measured', () => {
    const { slots, run } = clocked(100);
    expect(slots.limit()).toBe(4);
    expect(slots.wanted(0)).toBe(4);
    run(100, 1); // 100 ms of handlers, but no receive measured yet
    expect(slots.limit()).toBe(4);
  });

  it('holds what its slots finish in one receive round trip, up to the bound', () => {
    const { slots, run } = clocked(100);
    slots.receiveTook(10);
    run(60, 1); // handlers of 1 ms: 4 slots finish 40 tasks in a 10 ms round trip
    expect(slots.limit()).toBe(4 + 40);
    expect(slots.wanted(0)).toBe(44);
    run(3000, 0.1); // faster handlers: about 400 would fit, the bound says 100
    expect(slots.limit()).toBe(4 + 100);
  });

  it('holds none for handlers slower than a round trip, and stops holding when they slow down', () => {
    const { slots, run, advance } = clocked(100);
    slots.receiveTook(10);
    run(60, 1);
    expect(slots.prefetch()).toBe(40);
    // Handlers turn slow: 4 running for 400 ms, none ended yet. The busy periods alone bring the
    // prefetch down before the first of them ends.
    for (let i = 0; i < 4; i++) slots.enter();
    for (let t = 0; t < 8; t++) {
      advance(50);
      slots.prefetch();
    }
    expect(slots.prefetch()).toBe(0);
    // Two-second handlers against 10 ms round trips: none held.
    for (let i = 0; i < 4; i++) {
      advance(2000);
      slots.leave();
    }
    advance(50);
    expect(slots.prefetch()).toBe(0);
  });

  it('is off with a bound of 0', () => {
    const { slots, run } = clocked(0);
    slots.receiveTook(10);
    run(100, 0.01);
    expect(slots.limit()).toBe(4);
  });
});
