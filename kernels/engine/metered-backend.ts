/**
 * A Backend that forwards every operation to another backend and counts the weight traffic:
 * matmul calls and the bytes of weight matrices they read. The serving engine reads it per step
 * (a batched step of any number of sequences reads each weight once; without batching every
 * sequence reads them again), the Node origin exposes it in /metrics, and tests use it to prove
 * the batching claim on the real kernels.
 */
import type { AttentionParams, Backend, KVCache, KVCacheShape, RopeParams, Weight, WeightData } from "../model/backend.ts";

export interface WeightTraffic {
  /** matmul calls (one weight matrix read each). */
  matmulCalls: number;
  /** Bytes of weight blocks those calls read. */
  weightBytes: number;
  /** Rows of activations (tokens) that went through them. */
  tokenRows: number;
}

export class MeteredBackend implements Backend {
  readonly traffic: WeightTraffic = { matmulCalls: 0, weightBytes: 0, tokenRows: 0 };
  private readonly sizes = new WeakMap<Weight, number>();

  constructor(readonly inner: Backend) {}

  get name(): string {
    return this.inner.name;
  }

  /** A copy of the counters (subtract two snapshots for the traffic in between). */
  snapshot(): WeightTraffic {
    return { ...this.traffic };
  }

  loadWeight(data: WeightData): Weight {
    const w = this.inner.loadWeight(data);
    this.sizes.set(w, data.bytes.length);
    return w;
  }

  matmul(out: Float32Array, w: Weight, x: Float32Array, nTokens: number): void {
    this.traffic.matmulCalls++;
    this.traffic.weightBytes += this.sizes.get(w) ?? 0;
    this.traffic.tokenRows += nTokens;
    this.inner.matmul(out, w, x, nTokens);
  }

  getRows(out: Float32Array, w: Weight, ids: ArrayLike<number>): void {
    this.inner.getRows(out, w, ids);
  }

  rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, nTokens: number, eps: number): void {
    this.inner.rmsNorm(out, x, weight, nTokens, eps);
  }

  rope(x: Float32Array, nTokens: number, nHeads: number, headDim: number, positions: Int32Array, params: RopeParams): void {
    this.inner.rope(x, nTokens, nHeads, headDim, positions, params);
  }

  swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    this.inner.swiglu(out, gate, up, n);
  }

  createKVCache(shape: KVCacheShape): KVCache {
    return this.inner.createKVCache(shape);
  }

  attention(out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, cache: KVCache, layer: number, nTokens: number, params: AttentionParams): void {
    this.inner.attention(out, q, k, v, cache, layer, nTokens, params);
  }

  commit(cache: KVCache, nTokens: number): void {
    this.inner.commit(cache, nTokens);
  }
}
