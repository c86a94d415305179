import { describe, expect, it } from 'vitest';
import { TaskSlots } from '../src/engine/worker/slots.js';

describe('TaskSlots', () => {
  it('asks for messages by free task slots at the pack size seen lately', () => {
    let wakes = 0;
    const slots = new TaskSlots(64, 16, () => wakes++);
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
    const slots = new TaskSlots(2, 1, () => {});
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
});
