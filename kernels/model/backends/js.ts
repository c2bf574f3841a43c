/**
 * The reference backend: plain TypeScript, written to be read. Weights stay in their GGUF blocks;
 * a matmul dequantizes one row at a time (to float32, exactly as ggml does) and dots it with every
 * token of the batch in double precision, so each weight is read once per batch.
 * Faster backends are checked against this one.
 */
import { rowBytes } from "../../gguf/types.ts";
import { dequantize } from "../../quant/dequantize.ts";
import { F16_TO_F32, f32ToF16 } from "../../quant/half.ts";
import { kvCacheShapeBytes, kvCapacity, truncatedLength, type AttentionParams, type Backend, type KVCache, type KVCacheShape, type RopeParams, type Weight, type WeightData } from "../backend.ts";

interface JsWeight extends Weight {
  readonly bytes: Uint8Array;
  readonly rowBytes: number;
}

/** K and V rows of every layer, position-major: layer l, position p at (p · kvDim). */
class JsKVCache implements KVCache {
  length = 0;
  k: (Float32Array | Uint16Array)[] = [];
  v: (Float32Array | Uint16Array)[] = [];
  private capacity = -1;

  constructor(readonly shape: KVCacheShape) {
    this.reserve(0);
  }

  get bytes(): number {
    return kvCacheShapeBytes(this.shape, Math.max(0, this.capacity));
  }

  reserve(n: number): void {
    const capacity = kvCapacity(this.shape, n);
    if (capacity <= this.capacity) return;
    const { nLayers, kvDim, type } = this.shape;
    const grow = (old: Float32Array | Uint16Array | undefined) => {
      const rows = type === "f16" ? new Uint16Array(capacity * kvDim) : new Float32Array(capacity * kvDim);
      if (old) rows.set(old.subarray(0, this.length * kvDim));
      return rows;
    };
    this.k = Array.from({ length: nLayers }, (_, l) => grow(this.k[l]));
    this.v = Array.from({ length: nLayers }, (_, l) => grow(this.v[l]));
    this.capacity = capacity;
  }

  truncate(n: number): void {
    this.length = truncatedLength(this.length, n);
  }

  copyPrefixTo(dst: KVCache, n: number): void {
    if (!(dst instanceof JsKVCache) || !sameShape(dst.shape, this.shape)) throw new TypeError("copyPrefixTo needs a cache of the same backend and shape");
    if (n > this.length) throw new RangeError(`cannot copy ${n} positions from a cache of ${this.length}`);
    dst.truncate(0);
    dst.reserve(n);
    const end = n * this.shape.kvDim;
    for (let l = 0; l < this.shape.nLayers; l++) {
      dst.k[l]!.set(this.k[l]!.subarray(0, end));
      dst.v[l]!.set(this.v[l]!.subarray(0, end));
    }
    dst.length = n;
  }

  store(layer: number, pos: number, k: Float32Array, v: Float32Array): void {
    const at = pos * this.shape.kvDim;
    writeRow(this.k[layer]!, at, k);
    writeRow(this.v[layer]!, at, v);
  }

  read(rows: "k" | "v", layer: number, pos: number, headOffset: number, out: Float32Array): void {
    const src = this[rows][layer]!;
    const at = pos * this.shape.kvDim + headOffset;
    if (src instanceof Float32Array) out.set(src.subarray(at, at + out.length));
    else for (let i = 0; i < out.length; i++) out[i] = F16_TO_F32[src[at + i]!]!;
  }
}

function writeRow(dst: Float32Array | Uint16Array, at: number, row: Float32Array): void {
  if (dst instanceof Float32Array) dst.set(row, at);
  else for (let i = 0; i < row.length; i++) dst[at + i] = f32ToF16(row[i]!);
}

/** Σ a[i]·b[offset+i] in double precision; four partial sums let the JIT pipeline the loop. */
function dot(a: Float32Array, b: Float32Array, offset: number, n: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += a[i]! * b[offset + i]!;
    s1 += a[i + 1]! * b[offset + i + 1]!;
    s2 += a[i + 2]! * b[offset + i + 2]!;
    s3 += a[i + 3]! * b[offset + i + 3]!;
  }
  for (; i < n; i++) s0 += a[i]! * b[offset + i]!;
  return s0 + s1 + s2 + s3;
}

function sameShape(a: KVCacheShape, b: KVCacheShape): boolean {
  return a.nLayers === b.nLayers && a.nCtx === b.nCtx && a.kvDim === b.kvDim && a.type === b.type;
}

export function createJsBackend(): Backend {
  let rowScratch = new Float32Array(0);
  const rowBuffer = (n: number) => (rowScratch.length >= n ? rowScratch.subarray(0, n) : (rowScratch = new Float32Array(n)));

  function dequantizeRow(w: JsWeight, r: number, out: Float32Array): void {
    dequantize(w.type, w.bytes.subarray(r * w.rowBytes, (r + 1) * w.rowBytes), out);
  }

  return {
    name: "js",

    loadWeight(data: WeightData): Weight {
      const bytesPerRow = rowBytes(data.type, data.cols);
      if (data.bytes.length !== bytesPerRow * data.rows) {
        throw new RangeError(`${data.name}: expected ${bytesPerRow * data.rows} bytes, got ${data.bytes.length}`);
      }
      const w: JsWeight = { name: data.name, type: data.type, rows: data.rows, cols: data.cols, bytes: data.bytes, rowBytes: bytesPerRow };
      return w;
    },

    matmul(out, weight, x, nTokens) {
      const w = weight as JsWeight;
      const { rows, cols } = w;
      const row = rowBuffer(cols);
      for (let r = 0; r < rows; r++) {
        dequantizeRow(w, r, row);
        for (let t = 0; t < nTokens; t++) out[t * rows + r] = dot(row, x, t * cols, cols);
      }
    },

    getRows(out, weight, ids) {
      const w = weight as JsWeight;
      for (let t = 0; t < ids.length; t++) {
        const id = ids[t]!;
        if (!Number.isInteger(id) || id < 0 || id >= w.rows) throw new RangeError(`token id ${id} is outside the vocabulary (0..${w.rows - 1})`);
        dequantizeRow(w, id, out.subarray(t * w.cols, (t + 1) * w.cols));
      }
    },

    rmsNorm(out, x, weight, nTokens, eps) {
      const n = weight.length;
      for (let t = 0; t < nTokens; t++) {
        const o = t * n;
        let ss = 0;
        for (let i = 0; i < n; i++) ss += x[o + i]! * x[o + i]!;
        const scale = 1 / Math.sqrt(ss / n + eps);
        for (let i = 0; i < n; i++) out[o + i] = x[o + i]! * scale * weight[i]!;
      }
    },

    rope(x, nTokens, nHeads, headDim, positions, p: RopeParams) {
      const half = p.nDims / 2;
      for (let t = 0; t < nTokens; t++) {
        const pos = positions[t]! * p.freqScale;
        for (let h = 0; h < nHeads; h++) {
          const base = (t * nHeads + h) * headDim;
          for (let i = 0; i < half; i++) {
            const theta = pos * Math.pow(p.freqBase, (-2 * i) / p.nDims);
            const cos = Math.cos(theta);
            const sin = Math.sin(theta);
            // NeoX rotates dimension i with i + nDims/2; the original Llama layout rotates 2i with 2i+1.
            const a = base + (p.neox ? i : 2 * i);
            const b = a + (p.neox ? half : 1);
            const x0 = x[a]!;
            const x1 = x[b]!;
            x[a] = x0 * cos - x1 * sin;
            x[b] = x0 * sin + x1 * cos;
          }
        }
      }
    },

    swiglu(out, gate, up, n) {
      for (let i = 0; i < n; i++) {
        const g = gate[i]!;
        out[i] = (g / (1 + Math.exp(-g))) * up[i]!;
      }
    },

    createKVCache(shape) {
      return new JsKVCache(shape);
    },

    attention(out, q, k, v, kvCache, layer, nTokens, p: AttentionParams) {
      const cache = kvCache as JsKVCache;
      const { kvDim, nCtx } = cache.shape;
      const start = cache.length;
      if (start + nTokens > nCtx) throw new RangeError(`context full: ${start} + ${nTokens} tokens > ${nCtx}`);
      cache.reserve(start + nTokens);
      for (let t = 0; t < nTokens; t++) {
        cache.store(layer, start + t, k.subarray(t * kvDim, (t + 1) * kvDim), v.subarray(t * kvDim, (t + 1) * kvDim));
      }
      const groupSize = p.nHead / p.nHeadKv;
      const scores = new Float64Array(start + nTokens);
      const kRow = new Float32Array(p.headDim);
      const vRow = new Float32Array(p.headDim);
      const acc = new Float64Array(p.headDim);
      for (let t = 0; t < nTokens; t++) {
        const nPos = start + t + 1; // causal: a token sees itself and everything before it
        for (let h = 0; h < p.nHead; h++) {
          const qo = (t * p.nHead + h) * p.headDim;
          const kvOffset = Math.floor(h / groupSize) * p.headDim;
          let max = -Infinity;
          for (let j = 0; j < nPos; j++) {
            cache.read("k", layer, j, kvOffset, kRow);
            let dot = 0;
            for (let i = 0; i < p.headDim; i++) dot += q[qo + i]! * kRow[i]!;
            scores[j] = dot * p.scale;
            if (scores[j]! > max) max = scores[j]!;
          }
          let sum = 0;
          for (let j = 0; j < nPos; j++) sum += scores[j] = Math.exp(scores[j]! - max);
          acc.fill(0);
          for (let j = 0; j < nPos; j++) {
            cache.read("v", layer, j, kvOffset, vRow);
            const weight = scores[j]! / sum;
            for (let i = 0; i < p.headDim; i++) acc[i] += weight * vRow[i]!;
          }
          for (let i = 0; i < p.headDim; i++) out[qo + i] = acc[i]!;
        }
      }
    },

    commit(kvCache, nTokens) {
      const cache = kvCache as JsKVCache;
      cache.length += nTokens;
    },
  };
}
