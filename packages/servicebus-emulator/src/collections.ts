/**
 * The emulator's own deque and heap. Core has the same two (`@switchyard/core`'s util/heap.ts):
 * the emulator stands in for Azure Service Bus and must not depend on the library it tests, so it
 * keeps its copy.
 */
/** A growable ring-buffer deque: O(1) push/shift at both ends, so big queues never pay an array shift. */
export class Deque<T> {
  private buf: (T | undefined)[] = new Array<T | undefined>(16);
  private head = 0;
  private len = 0;

  get length(): number {
    return this.len;
  }

  push(value: T): void {
    if (this.len === this.buf.length) this.grow();
    this.buf[(this.head + this.len) & (this.buf.length - 1)] = value;
    this.len++;
  }

  unshift(value: T): void {
    if (this.len === this.buf.length) this.grow();
    this.head = (this.head - 1 + this.buf.length) & (this.buf.length - 1);
    this.buf[this.head] = value;
    this.len++;
  }

  peek(): T | undefined {
    return this.len === 0 ? undefined : this.buf[this.head];
  }

  shift(): T | undefined {
    if (this.len === 0) return undefined;
    const value = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) & (this.buf.length - 1);
    this.len--;
    return value;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.len; i++) {
      yield this.buf[(this.head + i) & (this.buf.length - 1)] as T;
    }
  }

  private grow(): void {
    const next = new Array<T | undefined>(this.buf.length * 2);
    for (let i = 0; i < this.len; i++) next[i] = this.buf[(this.head + i) & (this.buf.length - 1)];
    this.buf = next;
    this.head = 0;
  }
}

/** A binary min-heap ordered by a numeric key (scheduled enqueue times arrive in any order). */
export class MinHeap<T> {
  private readonly items: { key: number; value: T }[] = [];

  get length(): number {
    return this.items.length;
  }

  push(key: number, value: T): void {
    const items = this.items;
    items.push({ key, value });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      const c = items[i]!;
      if (p.key <= c.key) break;
      items[parent] = c;
      items[i] = p;
      i = parent;
    }
  }

  peekKey(): number | undefined {
    return this.items[0]?.key;
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined) return undefined;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && items[l]!.key < items[m]!.key) m = l;
        if (r < items.length && items[r]!.key < items[m]!.key) m = r;
        if (m === i) break;
        const tmp = items[m]!;
        items[m] = items[i]!;
        items[i] = tmp;
        i = m;
      }
    }
    return top.value;
  }
}
