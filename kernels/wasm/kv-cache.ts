/**
 * A sequence's KV-cache in wasm linear memory: per layer, K rows then V rows, position-major
 * (position p of layer l at k(l) + p · kvDim elements), F32 or F16.
 */
import { kvCacheShapeBytes, kvCapacity, truncatedLength, type KVCache, type KVCacheShape } from "../model/backend.ts";
import type { WasmHeap } from "./heap.ts";

/** Frees the memory of caches the program dropped without disposing of them. */
const reclaim = new FinalizationRegistry<() => void>((release) => release());

export class WasmKVCache implements KVCache {
  length = 0;
  readonly elementBytes: number;
  /** Positions allocated: nCtx, or (paged) the pages used so far; -1 before the first allocation. */
  private capacity = -1;
  private ptr = -1;
  private disposed = false;

  constructor(
    readonly shape: KVCacheShape,
    readonly heap: WasmHeap,
  ) {
    const { nLayers, nCtx, kvDim, type } = shape;
    for (const [name, v] of Object.entries({ nLayers, nCtx, kvDim })) {
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`KV-cache ${name} must be a positive integer, got ${v}`);
    }
    this.elementBytes = type === "f16" ? 2 : 4;
    this.reserve(0);
  }

  get bytes(): number {
    return kvCacheShapeBytes(this.shape, Math.max(0, this.capacity));
  }

  /** Bytes of one layer's K (or V) rows. */
  private get layerBytes(): number {
    return this.capacity * this.rowBytes;
  }

  /** Moves to an allocation that holds n positions (whole pages), keeping the rows held so far. */
  reserve(n: number): void {
    const capacity = kvCapacity(this.shape, n);
    if (capacity <= this.capacity) return;
    if (this.disposed) throw new Error("this KV-cache was disposed");
    const heap = this.heap;
    const ptr = heap.alloc(Math.max(1, kvCacheShapeBytes(this.shape, capacity)));
    const stride = capacity * this.rowBytes;
    if (this.ptr >= 0) {
      const used = this.length * this.rowBytes;
      for (let l = 0; l < this.shape.nLayers; l++) {
        heap.u8.copyWithin(ptr + 2 * l * stride, this.k(l), this.k(l) + used);
        heap.u8.copyWithin(ptr + (2 * l + 1) * stride, this.v(l), this.v(l) + used);
      }
      reclaim.unregister(this);
      heap.release(this.ptr);
    }
    this.ptr = ptr;
    this.capacity = capacity;
    reclaim.register(this, () => heap.release(ptr), this);
  }

  /** Address of layer l's K rows. */
  k(layer: number): number {
    if (this.ptr < 0) throw new Error("this KV-cache was disposed");
    return this.ptr + 2 * layer * this.layerBytes;
  }

  /** Address of layer l's V rows. */
  v(layer: number): number {
    return this.k(layer) + this.layerBytes;
  }

  /** Bytes of one position's row. */
  get rowBytes(): number {
    return this.shape.kvDim * this.elementBytes;
  }

  truncate(n: number): void {
    this.length = truncatedLength(this.length, n);
  }

  copyPrefixTo(dst: KVCache, n: number): void {
    if (!(dst instanceof WasmKVCache) || dst.heap !== this.heap || !sameShape(dst.shape, this.shape)) {
      throw new TypeError("copyPrefixTo needs a cache of the same wasm backend and shape");
    }
    if (!Number.isInteger(n) || n < 0 || n > this.length) throw new RangeError(`cannot copy ${n} positions from a cache of ${this.length}`);
    dst.truncate(0);
    dst.reserve(n);
    const u8 = this.heap.u8;
    const bytes = n * this.rowBytes;
    for (let l = 0; l < this.shape.nLayers; l++) {
      u8.copyWithin(dst.k(l), this.k(l), this.k(l) + bytes);
      u8.copyWithin(dst.v(l), this.v(l), this.v(l) + bytes);
    }
    dst.length = n;
  }

  /** Gives the memory back now; the cache is unusable afterwards. */
  dispose(): void {
    if (this.ptr < 0) return;
    reclaim.unregister(this);
    this.heap.release(this.ptr);
    this.ptr = -1;
    this.disposed = true;
  }
}

function sameShape(a: KVCacheShape, b: KVCacheShape): boolean {
  return a.nLayers === b.nLayers && a.nCtx === b.nCtx && a.kvDim === b.kvDim && a.type === b.type;
}
