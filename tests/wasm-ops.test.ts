import { describe, expect, it } from "vitest";
import { GGMLType } from "../kernels/gguf/types.ts";
import type { AttentionParams, Backend, KVCache, KVType, RopeParams } from "../kernels/model/backend.ts";
import { roundToF16 } from "../kernels/quant/half.ts";
import { createWasmBackend } from "../kernels/wasm/backend.ts";
import { activations, seeded } from "./wasm-reference/random.ts";

const f = Math.fround;

function expectClose(actual: Float32Array, expected: ArrayLike<number>, relative: number): void {
  expect(actual.length).toBe(expected.length);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  for (let i = 0; i < expected.length; i++) {
    if (Math.abs(actual[i]! - expected[i]!) > relative * scale) expect(actual[i], `element ${i}`).toBe(expected[i]);
  }
}

describe("rmsNorm", () => {
  it("is ggml's: Σx² in double, scale in float, (x·scale)·w", async () => {
    const random = seeded(1);
    const n = 576 + 3; // a ragged tail
    const nTokens = 3;
    const x = activations(random, n * nTokens);
    const w = activations(random, n);
    const out = new Float32Array(n * nTokens);
    (await createWasmBackend()).rmsNorm(out, x, w, nTokens, 1e-5);
    for (let t = 0; t < nTokens; t++) {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += f(x[t * n + i]! * x[t * n + i]!);
      const scale = f(1 / f(Math.sqrt(f(f(sum / n) + f(1e-5)))));
      const expected = Array.from({ length: n }, (_, i) => f(f(x[t * n + i]! * scale) * w[i]!));
      expectClose(out.subarray(t * n, (t + 1) * n), expected, 1e-7);
    }
  });
});

/** ggml's rope: θ = p, multiplied by base^(-2/nDims) in float per pair; angle freqScale·θ. */
function ggmlRope(x: Float32Array, nTokens: number, nHeads: number, headDim: number, positions: Int32Array, p: RopeParams): Float32Array {
  const out = x.slice();
  const thetaScale = f(Math.pow(p.freqBase, f(-2 / p.nDims)));
  for (let t = 0; t < nTokens; t++) {
    let theta = positions[t]!;
    for (let i = 0; i < p.nDims / 2; i++) {
      const angle = f(p.freqScale * theta);
      const c = f(Math.cos(angle)), s = f(Math.sin(angle));
      for (let h = 0; h < nHeads; h++) {
        const base = (t * nHeads + h) * headDim;
        const a = base + (p.neox ? i : 2 * i), b = a + (p.neox ? p.nDims / 2 : 1);
        out[a] = f(f(x[a]! * c) - f(x[b]! * s));
        out[b] = f(f(x[a]! * s) + f(x[b]! * c));
      }
      theta = f(theta * thetaScale);
    }
  }
  return out;
}

describe("rope", () => {
  for (const neox of [false, true]) {
    it(`${neox ? "NeoX" : "normal"} ordering, partial rotation, scaled positions`, async () => {
      const random = seeded(neox ? 3 : 2);
      const nTokens = 4, nHeads = 3, headDim = 64;
      const positions = Int32Array.from([0, 1, 37, 4095]);
      for (const p of [
        { nDims: 64, freqBase: 10000, freqScale: 1, neox },
        { nDims: 32, freqBase: 500000, freqScale: 0.25, neox },
      ]) {
        const x = activations(random, nTokens * nHeads * headDim);
        const expected = ggmlRope(x, nTokens, nHeads, headDim, positions, p);
        const backend = await createWasmBackend();
        backend.rope(x, nTokens, nHeads, headDim, positions, p);
        expectClose(x, expected, 1e-6);
        // unrotated dimensions are left alone
        if (p.nDims < headDim) expect(x.subarray(p.nDims, headDim)).toEqual(expected.subarray(p.nDims, headDim));
        // a second call at the same positions reuses the table and still rotates
        backend.rope(x, nTokens, nHeads, headDim, positions, p);
        expectClose(x, ggmlRope(expected, nTokens, nHeads, headDim, positions, p), 1e-6);
      }
    });
  }
});

describe("swiglu", () => {
  it("is silu(g)·u within ggml's vector-exp error", async () => {
    const random = seeded(4);
    const n = 1536 + 3;
    const gate = activations(random, n).map((v) => v * 5);
    gate.set([0, -0, 88, -88, 100, -100, 1e-30], 0);
    const up = activations(random, n);
    const out = new Float32Array(n);
    (await createWasmBackend()).swiglu(out, gate, up, n);
    for (let i = 0; i < n; i++) {
      const g = gate[i]!;
      const expected = (g / (1 + Math.exp(-g))) * up[i]!;
      expect(Math.abs(out[i]! - expected)).toBeLessThanOrEqual(4e-7 * Math.abs(expected) + 1e-37);
    }
  });
});

const PARAMS: AttentionParams = { nHead: 6, nHeadKv: 2, headDim: 16, scale: 0.25 };
const KV_DIM = PARAMS.nHeadKv * PARAMS.headDim;

/** Feeds `tokens` batches (sizes) of random q/k/v through attention; returns every output. */
function feed(backend: Backend, cache: KVCache, layers: number, sizes: number[], seed: number): Float32Array[] {
  const random = seeded(seed);
  const outs: Float32Array[] = [];
  for (const n of sizes) {
    for (let l = 0; l < layers; l++) {
      const q = activations(random, n * PARAMS.nHead * PARAMS.headDim);
      const k = activations(random, n * KV_DIM);
      const v = activations(random, n * KV_DIM);
      const out = new Float32Array(q.length);
      backend.attention(out, q, k, v, cache, l, n, PARAMS);
      outs.push(out);
    }
    backend.commit(cache, n);
  }
  return outs;
}

/**
 * Causal attention of a whole sequence in float64, as llama.cpp defines it for a cache of `type`:
 * with an F16 cache, K, V, q and the probabilities are rounded to fp16 before the products.
 */
function referenceAttention(q: Float32Array[], k: Float32Array[], v: Float32Array[], type: KVType, params: AttentionParams): Float64Array[] {
  const h16 = (x: number) => (type === "f16" ? roundToF16(x) : x);
  const { nHead, nHeadKv, headDim, scale } = params;
  return q.map((qt, t) => {
    const out = new Float64Array(qt.length);
    for (let h = 0; h < nHead; h++) {
      const kvOffset = Math.floor(h / (nHead / nHeadKv)) * headDim;
      const scores = Array.from({ length: t + 1 }, (_, j) => {
        let dot = 0;
        for (let i = 0; i < headDim; i++) dot += h16(qt[h * headDim + i]!) * h16(k[j]![kvOffset + i]!);
        return dot * scale;
      });
      const max = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - max));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j <= t; j++) {
        const p = h16(e[j]! / sum);
        for (let i = 0; i < headDim; i++) out[h * headDim + i] += p * h16(v[j]![kvOffset + i]!);
      }
    }
    return out;
  });
}

describe("attention", () => {
  const ODD_HEADS: AttentionParams = { nHead: 4, nHeadKv: 4, headDim: 6, scale: 0.4 };
  for (const [type, params] of [["f32", PARAMS], ["f16", PARAMS], ["f32", ODD_HEADS], ["f16", ODD_HEADS]] as [KVType, AttentionParams][]) {
    it(`is causal attention over an ${type.toUpperCase()} cache (head dim ${params.headDim}), in batches and single tokens`, async () => {
      const backend = await createWasmBackend();
      const kvDim = params.nHeadKv * params.headDim;
      const width = params.nHead * params.headDim;
      const cache = backend.createKVCache({ nLayers: 1, nCtx: 40, kvDim, type });
      const random = seeded(5);
      const q: Float32Array[] = [], k: Float32Array[] = [], v: Float32Array[] = [], outs: Float32Array[] = [];
      for (const n of [7, 1, 1, 13, 1]) {
        const qb = activations(random, n * width);
        const kb = activations(random, n * kvDim);
        const vb = activations(random, n * kvDim);
        const out = new Float32Array(qb.length);
        backend.attention(out, qb, kb, vb, cache, 0, n, params);
        backend.commit(cache, n);
        for (let t = 0; t < n; t++) {
          q.push(qb.slice(t * width, (t + 1) * width));
          k.push(kb.slice(t * kvDim, (t + 1) * kvDim));
          v.push(vb.slice(t * kvDim, (t + 1) * kvDim));
          outs.push(out.slice(t * width, (t + 1) * width));
        }
      }
      // Rounding a probability to fp16 in another order can move it by one fp16 step.
      referenceAttention(q, k, v, type, params).forEach((expected, t) => expectClose(outs[t]!, expected, type === "f32" ? 2e-6 : 1e-3));
    });
  }

  it("copyPrefixTo and truncate give the cache of the shorter sequence", async () => {
    const backend = await createWasmBackend();
    const shape = { nLayers: 2, nCtx: 32, kvDim: KV_DIM, type: "f32" as KVType };
    const full = backend.createKVCache(shape);
    feed(backend, full, 2, [5, 1, 1], 6);
    const copy = backend.createKVCache(shape);
    full.copyPrefixTo(copy, 5);
    expect(copy.length).toBe(5);
    full.truncate(5);
    const fresh = backend.createKVCache(shape);
    feed(backend, fresh, 2, [5], 6);
    const next = [feed(backend, copy, 2, [2], 7), feed(backend, full, 2, [2], 7), feed(backend, fresh, 2, [2], 7)];
    expect(next[0]).toEqual(next[2]);
    expect(next[1]).toEqual(next[2]);
  });

  it("refuses overflow, foreign caches and shape mismatches", async () => {
    const backend = await createWasmBackend();
    const other = await createWasmBackend();
    const shape = { nLayers: 1, nCtx: 4, kvDim: KV_DIM, type: "f32" as KVType };
    const cache = backend.createKVCache(shape);
    expect(() => feed(backend, cache, 1, [5], 1)).toThrow(RangeError);
    expect(() => feed(other, cache, 1, [1], 1)).toThrow(TypeError);
    expect(() => cache.copyPrefixTo(backend.createKVCache({ ...shape, nCtx: 8 }), 0)).toThrow(TypeError);
    expect(() => cache.truncate(1)).toThrow(RangeError);
    expect(cache.bytes).toBe(2 * 4 * KV_DIM * 4);
    expect(backend.createKVCache({ ...shape, type: "f16" }).bytes).toBe(2 * 4 * KV_DIM * 2);
  });
});

describe("linear memory", () => {
  it("grows only as needed, and weights and results survive its growth", async () => {
    const backend = await createWasmBackend();
    const random = seeded(8);
    const rows = 8, cols = 64;
    const x = activations(random, cols);
    const bytes = new Uint8Array(new Float32Array(rows * cols).map(() => random() - 0.5).buffer);
    const weight = backend.loadWeight({ name: "w", type: GGMLType.F32, rows, cols, bytes });
    const before = new Float32Array(rows);
    backend.matmul(before, weight, x, 1);
    const small = backend.memoryBytes;
    expect(small).toBeLessThan(1 << 20);
    const big = backend.createKVCache({ nLayers: 4, nCtx: 4096, kvDim: 256, type: "f32" }); // 32 MiB
    expect(backend.memoryBytes).toBeGreaterThan(32 << 20);
    const after = new Float32Array(rows);
    backend.matmul(after, weight, x, 1);
    expect(after).toEqual(before);
    // a disposed cache's memory is reused rather than grown
    const grown = backend.memoryBytes;
    (big as unknown as { dispose(): void }).dispose();
    backend.createKVCache({ nLayers: 4, nCtx: 4096, kvDim: 256, type: "f32" });
    expect(backend.memoryBytes).toBe(grown);
  });
});
