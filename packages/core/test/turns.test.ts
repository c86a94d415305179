import { describe, expect, it } from 'vitest';
import { Turns } from '../src/util/turns.js';

describe('Turns', () => {
  it('serves keys in turn, each key’s items in order, a newcomer after the keys already waiting', () => {
    const turns = new Turns<string>();
    for (let i = 0; i < 4; i++) turns.push('big', `big-${i}`);
    turns.push('small', 'small-0');
    turns.push('other', 'other-0');
    turns.push('small', 'small-1');
    expect(turns.length).toBe(7);
    const order: string[] = [];
    for (let next = turns.shift(); next !== undefined; next = turns.shift()) order.push(next);
    expect(order).toEqual(['big-0', 'small-0', 'other-0', 'big-1', 'small-1', 'big-2', 'big-3']);
    expect(turns.length).toBe(0);
  });

  it('gives a key that emptied and came back a fresh turn at the end of the line', () => {
    const turns = new Turns<string>();
    turns.push('a', 'a-0');
    turns.push('b', 'b-0');
    expect(turns.shift()).toBe('a-0');
    turns.push('a', 'a-1');
    turns.push('c', 'c-0');
    expect([turns.shift(), turns.shift(), turns.shift(), turns.shift()]).toEqual([
      'b-0',
      'a-1',
      'c-0',
      undefined,
    ]);
  });
});
