/// <reference types="@webgpu/types" />
/**
 * One sequence's KV-cache in GPU buffers: per layer, K and V of nCtx positions × kvDim, float32
 * or fp16. It implements the engine's KVCache contract; its store/attention operations are bound
 * to the model that made it, and only that model's forward accepts it.
 */
import { kvCacheShapeBytes, truncatedLength, type KVCache, type KVCacheShape } from "../model/backend.ts";
import type { Op } from "./ops.ts";

export interface LayerCacheOps {
  store: Op;
  attend: Op;
}

export class WebGpuKVCache implements KVCache {
  length = 0;
  private destroyed = false;

  constructor(
    readonly shape: KVCacheShape,
    /** The model that made this cache (forward checks it). */
    readonly owner: object,
    private readonly device: GPUDevice,
    private readonly k: GPUBuffer[],
    private readonly v: GPUBuffer[],
    readonly layers: LayerCacheOps[],
  ) {}

  get bytes(): number {
    return kvCacheShapeBytes(this.shape);
  }

  truncate(n: number): void {
    this.length = truncatedLength(this.length, n);
  }

  /** Queues a GPU copy of the first n positions; later steps on either cache run after it. */
  copyPrefixTo(dst: KVCache, n: number): void {
    if (!(dst instanceof WebGpuKVCache) || dst.owner !== this.owner || !sameShape(dst.shape, this.shape)) {
      throw new TypeError("copyPrefixTo needs a cache of the same WebGPU model and shape");
    }
    if (!Number.isInteger(n) || n < 0 || n > this.length) throw new RangeError(`cannot copy ${n} positions from a cache of ${this.length}`);
    this.checkAlive();
    dst.checkAlive();
    // fp16 positions are kvDim·2 bytes, a multiple of 4 since kvDim is even.
    const bytes = n * this.shape.kvDim * (this.shape.type === "f16" ? 2 : 4);
    if (bytes > 0) {
      const encoder = this.device.createCommandEncoder({ label: "kv prefix copy" });
      for (let l = 0; l < this.shape.nLayers; l++) {
        encoder.copyBufferToBuffer(this.k[l]!, 0, dst.k[l]!, 0, bytes);
        encoder.copyBufferToBuffer(this.v[l]!, 0, dst.v[l]!, 0, bytes);
      }
      this.device.queue.submit([encoder.finish()]);
    }
    dst.length = n;
  }

  checkAlive(): void {
    if (this.destroyed) throw new Error("this KV-cache was destroyed");
  }

  /** Frees the GPU buffers now rather than when garbage collected. */
  destroy(): void {
    this.destroyed = true;
    for (const b of [...this.k, ...this.v]) b.destroy();
  }

  /** What the serving engine calls when a sequence ends (as for the wasm backend's caches). */
  dispose(): void {
    this.destroy();
  }
}

function sameShape(a: KVCacheShape, b: KVCacheShape): boolean {
  return a.nLayers === b.nLayers && a.nCtx === b.nCtx && a.kvDim === b.kvDim && a.type === b.type;
}
