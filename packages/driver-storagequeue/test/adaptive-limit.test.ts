import { describe, expect, it } from 'vitest';
import { AdaptiveLimit } from '../src/adaptive-limit.js';

/** A request that runs until `finish()` is called. */
function request(started: string[], name: string) {
  let finish!: () => void;
  const done = new Promise<void>((r) => {
    finish = r;
  });
  return {
    run: () => {
      started.push(name);
      return done;
    },
    finish,
  };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('AdaptiveLimit', () => {
  it('keeps at most its limit in flight; an urgent request takes the next slot before the others waiting', async () => {
    const limit = new AdaptiveLimit({ max: 1 });
    const started: string[] = [];
    const first = request(started, 'first');
    const a = request(started, 'task a');
    const b = request(started, 'task b');
    const stage = request(started, 'stage');
    const running = [
      limit.run(first.run),
      limit.run(a.run),
      limit.run(b.run),
      limit.run(stage.run, true),
    ];
    await turn();
    expect(started).toEqual(['first']);
    first.finish();
    await turn();
    expect(started).toEqual(['first', 'stage']);
    stage.finish();
    await turn();
    expect(started).toEqual(['first', 'stage', 'task a']);
    a.finish();
    await turn();
    b.finish();
    await Promise.all(running);
    expect(started).toEqual(['first', 'stage', 'task a', 'task b']);
  });

  it('halves its slots on throttling and grows them back one at a time', () => {
    const limit = new AdaptiveLimit({ max: 8, episodeMs: 0 });
    limit.throttled(1);
    expect(limit.limit).toBe(4);
    for (let i = 0; i < 4; i++) limit.succeeded();
    expect(limit.limit).toBe(5);
  });
});
