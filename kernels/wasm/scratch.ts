/** A reusable region of the wasm heap for an operation's inputs, outputs and temporaries. */
import { type WasmHeap, alignUp } from "./heap.ts";

export class Scratch {
  private ptr = 0;
  private size = 0;

  constructor(private readonly heap: WasmHeap) {}

  /**
   * Addresses of consecutive, cache-line-aligned parts of the given byte sizes, valid until the
   * next call (which may move them).
   */
  carve(...sizes: number[]): number[] {
    let total = 0;
    for (let i = 0; i < sizes.length; i++) total += alignUp(sizes[i]!);
    if (total > this.size) {
      if (this.size) this.heap.release(this.ptr);
      this.size = total;
      this.ptr = this.heap.alloc(total);
    }
    // the sizes array becomes the addresses: one allocation per call (operations run per layer)
    let at = this.ptr;
    for (let i = 0; i < sizes.length; i++) {
      const size = alignUp(sizes[i]!);
      sizes[i] = at;
      at += size;
    }
    return sizes;
  }
}
