/**
 * A sequence's KV-cache in wasm linear memory: per layer, K rows then V rows, position-major
 * (position p of layer l at k(l) + p · kvDim elements), F32 or F16.
 */
import { truncatedLength, type KVCache, type KVCacheShape } from "../model/backend.ts";
import type { WasmHeap } from "./heap.ts";

/** Frees the memory of caches the program dropped without disposing of them. */
const reclaim = new FinalizationRegistry<() => void>((release) => release());

export class WasmKVCache implements KVCache {
  length = 0;
  readonly elementBytes: number;
  /** Bytes of one layer's K (or V) rows. */
  private readonly layerBytes: number;
  private ptr: number;

  constructor(
    readonly shape: KVCacheShape,
    readonly heap: WasmHeap,
  ) {
    const { nLayers, nCtx, kvDim, type } = shape;
    for (const [name, v] of Object.entries({ nLayers, nCtx, kvDim })) {
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`KV-cache ${name} must be a positive integer, got ${v}`);
    }
    this.elementBytes = type === "f16" ? 2 : 4;
    this.layerBytes = nCtx * kvDim * this.elementBytes;
    this.ptr = heap.alloc(this.bytes);
    const ptr = this.ptr;
    reclaim.register(this, () => heap.release(ptr), this);
  }

  get bytes(): number {
    return 2 * this.shape.nLayers * this.layerBytes;
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
  }
}

function sameShape(a: KVCacheShape, b: KVCacheShape): boolean {
  return a.nLayers === b.nLayers && a.nCtx === b.nCtx && a.kvDim === b.kvDim && a.type === b.type;
}
