import type { GGMLType } from "../gguf/types.ts";

/**
 * The compute backend interface. The forward pass (forward.ts) is written once against these
 * operations; backends (js reference, wasm, webgpu) decide where weights and the KV-cache live
 * and how each operation runs. Activations are row-major Float32Arrays: `nTokens` rows of the
 * operation's width, one row per token of the batch.
 */

/** A weight matrix in its GGUF block format: `rows` rows of `cols` elements each. */
export interface WeightData {
  name: string;
  type: GGMLType;
  rows: number;
  cols: number;
  /** Exactly rows × rowBytes(type, cols) bytes of GGUF blocks. */
  bytes: Uint8Array;
}

/** A weight held by a backend. Opaque to the model beyond its shape. */
export interface Weight {
  readonly name: string;
  readonly type: GGMLType;
  readonly rows: number;
  readonly cols: number;
}

export type KVType = "f32" | "f16";

export interface KVCacheShape {
  nLayers: number;
  /** Positions the cache can hold. */
  nCtx: number;
  /** n_head_kv × head_dim: the width of one token's K (and V) row in one layer. */
  kvDim: number;
  type: KVType;
  /**
   * Allocate KV_PAGE positions at a time as they are used, instead of all nCtx up front: a pool
   * of caches (a ShardDO's) then holds as many sessions as their actual lengths allow.
   */
  paged?: boolean;
}

/** Positions per page of a paged KV-cache. */
export const KV_PAGE = 16;

/** Bytes of K and V for every layer and position of a cache of this shape (of `positions` of them). */
export function kvCacheShapeBytes(shape: KVCacheShape, positions = shape.nCtx): number {
  return 2 * shape.nLayers * positions * shape.kvDim * (shape.type === "f16" ? 2 : 4);
}

/** Positions a cache of this shape allocates to hold n: all of nCtx, or (paged) whole pages. */
export function kvCapacity(shape: KVCacheShape, n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > shape.nCtx) throw new RangeError(`context full: ${n} positions > ${shape.nCtx}`);
  return shape.paged ? Math.min(shape.nCtx, Math.ceil(n / KV_PAGE) * KV_PAGE) : shape.nCtx;
}

/** The new length for `truncate(n)` on a cache holding `length` positions; throws when n is not in [0, length]. */
export function truncatedLength(length: number, n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > length) throw new RangeError(`cannot truncate a cache of ${length} positions to ${n}`);
  return n;
}

/** The KV-cache of one sequence. Position p holds the K and V rows of the sequence's p-th token. */
export interface KVCache {
  readonly shape: KVCacheShape;
  /** Number of positions filled. */
  readonly length: number;
  /** Forget every position from n on (n ≤ length). */
  truncate(n: number): void;
  /** Make `dst` hold this sequence's first n positions (dst must have the same shape). */
  copyPrefixTo(dst: KVCache, n: number): void;
  /** Bytes the cache holds (for memory accounting): all of nCtx, or the pages allocated so far. */
  readonly bytes: number;
  /** A paged cache allocates the pages that n positions need (keeping what it holds); others need not. */
  reserve?(n: number): void;
}

/** How the rotary embedding is applied (from the model's metadata). */
export interface RopeParams {
  /** Rotated dimensions per head (≤ head_dim); usually head_dim. */
  nDims: number;
  freqBase: number;
  /** Linear position scaling: positions are multiplied by this (1 / rope.scaling.factor). */
  freqScale: number;
  /** NeoX ordering rotates (i, i + nDims/2) pairs; normal ordering rotates (2i, 2i+1). */
  neox: boolean;
}

export interface AttentionParams {
  nHead: number;
  nHeadKv: number;
  headDim: number;
  /** Usually 1/sqrt(head_dim). */
  scale: number;
}

export interface Backend {
  readonly name: string;

  /** Take a weight matrix in GGUF block format into the backend. */
  loadWeight(data: WeightData): Weight;

  /**
   * Optional, loadWeight without an intermediate copy: `fill` receives the weight's place in the
   * backend's memory (exactly rows × rowBytes bytes) and writes its GGUF blocks there, e.g. by
   * reading them from a file. The view is only valid during the call.
   */
  loadWeightFrom?(shape: Omit<WeightData, "bytes">, fill: (dst: Uint8Array) => void): Weight;

  /** out[t][r] = Σ_c W[r][c] · x[t][c], for t < nTokens (x: nTokens × cols, out: nTokens × rows). */
  matmul(out: Float32Array, w: Weight, x: Float32Array, nTokens: number): void;

  /** out[t] = row ids[t] of W as float32 (embedding lookup). */
  getRows(out: Float32Array, w: Weight, ids: ArrayLike<number>): void;

  /** out[t] = x[t] / rms(x[t]) · weight, rows of weight.length. */
  rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, nTokens: number, eps: number): void;

  /** Rotates each head of x in place; x: nTokens × nHeads × headDim, token t at positions[t]. */
  rope(x: Float32Array, nTokens: number, nHeads: number, headDim: number, positions: Int32Array, params: RopeParams): void;

  /** out = silu(gate) · up, elementwise over n values. */
  swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;

  /** A new, empty KV-cache for one sequence. */
  createKVCache(shape: KVCacheShape): KVCache;

  /**
   * Stores k and v (nTokens × kvDim) at positions cache.length … cache.length+nTokens-1 of
   * `layer`, then writes causal attention of q (nTokens × nHead × headDim) over positions
   * 0 … own position into out (same shape as q). Does not advance cache.length: the model
   * calls `commit` once every layer has stored its rows.
   */
  attention(out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, cache: KVCache, layer: number, nTokens: number, params: AttentionParams): void;

  /** Marks nTokens more positions of the cache as filled (after all layers ran). */
  commit(cache: KVCache, nTokens: number): void;
}
