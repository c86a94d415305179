import { Deque } from './heap.js';

/**
 * Items of several keys, taken one key at a time in turn, each key's items in the order they came:
 * a key with one item waiting behind thousands of another key's gets the next turn, not the last.
 */
export class Turns<T> {
  private readonly byKey = new Map<string, Deque<T>>();
  /** Keys with an item waiting, in the order their next turns come. */
  private readonly order = new Deque<string>();
  private size = 0;

  get length(): number {
    return this.size;
  }

  push(key: string, value: T): void {
    let items = this.byKey.get(key);
    if (!items) {
      items = new Deque();
      this.byKey.set(key, items);
      this.order.push(key);
    }
    items.push(value);
    this.size++;
  }

  /** The first waiting item of the key whose turn it is. */
  shift(): T | undefined {
    const key = this.order.shift();
    if (key === undefined) return undefined;
    const items = this.byKey.get(key)!;
    const next = items.shift();
    if (items.length === 0) this.byKey.delete(key);
    else this.order.push(key);
    this.size--;
    return next;
  }
}
