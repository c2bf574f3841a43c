/**
 * A single-consumer async queue: the engine pushes a request's events as its steps produce them,
 * the consumer pulls them with `for await`. Events are buffered (they are small), so a slow
 * consumer never blocks the engine's loop. Ending the iteration early (break, return, a thrown
 * error in the loop body) calls `onReturn` — the engine cancels the request.
 */
export class Channel<T> implements AsyncIterable<T> {
  private readonly buffer: T[] = [];
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  private ended = false;
  private failure: { error: unknown } | undefined;
  private iterating = false;

  constructor(private readonly onReturn: () => void = () => {}) {}

  push(value: T): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value, done: false });
    } else this.buffer.push(value);
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.settleWaiter();
  }

  fail(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = { error };
    this.settleWaiter();
  }

  private settleWaiter(): void {
    if (!this.waiter || this.buffer.length > 0) return;
    const w = this.waiter;
    this.waiter = undefined;
    if (this.failure) w.reject(this.failure.error);
    else w.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.iterating) throw new Error("this stream has already been iterated (one consumer only)");
    this.iterating = true;
    return {
      next: () => {
        if (this.buffer.length > 0) return Promise.resolve({ value: this.buffer.shift()!, done: false });
        if (this.failure) return Promise.reject(this.failure.error);
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.waiter = { resolve, reject };
        });
      },
      return: () => {
        const wasOpen = !this.ended;
        this.ended = true;
        this.buffer.length = 0;
        if (wasOpen) this.onReturn();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
