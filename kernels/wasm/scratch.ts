/** A reusable region of the wasm heap for an operation's inputs, outputs and temporaries. */
import type { WasmHeap } from "./heap.ts";

const ALIGN = 64;

export class Scratch {
  private ptr = 0;
  private size = 0;

  constructor(private readonly heap: WasmHeap) {}

  /**
   * Addresses of consecutive, cache-line-aligned parts of the given byte sizes, valid until the
   * next call (which may move them).
   */
  carve(...sizes: number[]): number[] {
    const aligned = sizes.map((s) => Math.ceil(s / ALIGN) * ALIGN);
    const total = aligned.reduce((a, b) => a + b, 0);
    if (total > this.size) {
      if (this.size) this.heap.release(this.ptr);
      this.size = total;
      this.ptr = this.heap.alloc(total);
    }
    let at = this.ptr;
    return aligned.map((s) => {
      const part = at;
      at += s;
      return part;
    });
  }
}
