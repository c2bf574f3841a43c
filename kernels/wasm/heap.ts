/**
 * The WebAssembly linear memory, managed from JS: weights, KV-caches and scratch buffers are
 * carved out of it with a first-fit allocator, and it grows (never shrinks) only when an
 * allocation does not fit. Growing detaches the old ArrayBuffer, so views are re-derived on
 * every access and never handed out.
 */
import type { WasmMemory } from "./wasm-api.ts";

const PAGE = 65536;
const ALIGN = 64; // a cache line
/** Bytes kept unallocated past the last block: kernels may read a little past their data. */
const SLACK = 128;

interface FreeBlock {
  start: number;
  size: number;
}

export class WasmHeap {
  private readonly sizes = new Map<number, number>();
  /** Free blocks below `top`, sorted by address, never adjacent. */
  private free: FreeBlock[] = [];
  private top: number;
  private buffer: ArrayBufferLike | undefined;
  private u8View: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  private f32View: Float32Array<ArrayBufferLike> = new Float32Array(0);
  private i32View: Int32Array<ArrayBufferLike> = new Int32Array(0);

  constructor(
    readonly memory: WasmMemory,
    base: number,
  ) {
    this.top = alignUp(base);
  }

  /** Bytes of linear memory (what the heap costs in address space and, once touched, in RSS). */
  get memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  get u8(): Uint8Array<ArrayBufferLike> {
    this.refresh();
    return this.u8View;
  }

  get f32(): Float32Array<ArrayBufferLike> {
    this.refresh();
    return this.f32View;
  }

  get i32(): Int32Array<ArrayBufferLike> {
    this.refresh();
    return this.i32View;
  }

  alloc(bytes: number): number {
    const size = alignUp(Math.max(bytes, 1));
    const index = this.free.findIndex((b) => b.size >= size);
    let start: number;
    if (index >= 0) {
      const block = this.free[index]!;
      start = block.start;
      if (block.size === size) this.free.splice(index, 1);
      else this.free[index] = { start: start + size, size: block.size - size };
    } else {
      start = this.top;
      this.reserve(start + size + SLACK);
      this.top = start + size;
    }
    this.sizes.set(start, size);
    return start;
  }

  release(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) throw new Error(`wasm heap: ${ptr} is not an allocated block`);
    this.sizes.delete(ptr);
    let at = this.free.findIndex((b) => b.start > ptr);
    if (at < 0) at = this.free.length;
    this.free.splice(at, 0, { start: ptr, size });
    // Merge with the neighbours, and give a trailing free block back to `top`.
    const next = this.free[at + 1];
    if (next && ptr + size === next.start) {
      this.free[at]!.size += next.size;
      this.free.splice(at + 1, 1);
    }
    const prev = this.free[at - 1];
    if (prev && prev.start + prev.size === ptr) {
      prev.size += this.free[at]!.size;
      this.free.splice(at, 1);
    }
    const last = this.free[this.free.length - 1];
    if (last && last.start + last.size === this.top) {
      this.top = last.start;
      this.free.pop();
    }
  }

  /** Copies floats into the heap at ptr. */
  writeF32(ptr: number, src: ArrayLike<number>): void {
    this.f32.set(src, ptr >>> 2);
  }

  /** Copies n floats from the heap at ptr into dst. */
  readF32(ptr: number, dst: Float32Array, n = dst.length): void {
    dst.set(this.f32.subarray(ptr >>> 2, (ptr >>> 2) + n));
  }

  private reserve(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
  }

  private refresh(): void {
    const buffer = this.memory.buffer;
    if (buffer === this.buffer) return;
    this.buffer = buffer;
    this.u8View = new Uint8Array(buffer);
    this.f32View = new Float32Array(buffer);
    this.i32View = new Int32Array(buffer);
  }
}

/** n rounded up to a whole cache line. */
export function alignUp(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}
