/**
 * The waiting queue: requests accepted but not yet holding a KV-cache, first come first served,
 * with a hard limit. A full queue refuses new requests (backpressure) instead of growing without
 * bound; the caller turns that into 429 + Retry-After.
 */
export class RequestQueue<T> {
  private items: T[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`queue limit must be an integer ≥ 0, got ${limit}`);
  }

  get length(): number {
    return this.items.length;
  }

  get full(): boolean {
    return this.items.length >= this.limit;
  }

  /** Appends; false when the queue is full (nothing is added). */
  offer(item: T): boolean {
    if (this.full) return false;
    this.items.push(item);
    return true;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  shift(): T | undefined {
    return this.items.shift();
  }

  /** Removes every item matching `pred` (cancelled requests); returns them. */
  removeWhere(pred: (item: T) => boolean): T[] {
    const removed: T[] = [];
    this.items = this.items.filter((it) => {
      if (!pred(it)) return true;
      removed.push(it);
      return false;
    });
    return removed;
  }

  /** Empties the queue; returns what it held. */
  drain(): T[] {
    const all = this.items;
    this.items = [];
    return all;
  }

  [Symbol.iterator](): Iterator<T> {
    return this.items[Symbol.iterator]();
  }
}
