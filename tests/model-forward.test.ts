import { describe, expect, it } from "vitest";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { GGMLType } from "../kernels/gguf/types.ts";
import { createJsBackend } from "../kernels/model/backends/js.ts";
import { readModelConfig, ModelConfigError } from "../kernels/model/config.ts";
import { generate } from "../kernels/model/generate.ts";
import { loadModel, type Model } from "../kernels/model/model.ts";
import { synthesize, type SynthSpec } from "../scripts/lib/synth.ts";

const base: SynthSpec = { arch: "llama", nEmbd: 64, nLayer: 2, nHead: 8, nHeadKv: 2, nFf: 96, type: GGMLType.F32, vocab: 300, seed: 7, nCtx: 64 };

function model(spec: Partial<SynthSpec> = {}): Model {
  return loadModel(parseGGUF(synthesize({ ...base, ...spec })), createJsBackend());
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

const tokens = [1, 40, 41, 300 - 1, 77, 5, 260, 123, 9];

describe("forward pass", () => {
  for (const arch of ["llama", "qwen2"] as const) {
    it(`${arch}: one batched prefill equals token-by-token decode`, () => {
      const m = model({ arch });
      const batched = m.forward(m.createCache(), tokens, { allLogits: true });
      const cache = m.createCache();
      for (let t = 0; t < tokens.length; t++) {
        const row = m.forward(cache, [tokens[t]!]);
        expect(maxDiff(row, batched.subarray(t * m.config.nVocab, (t + 1) * m.config.nVocab))).toBeLessThan(1e-4);
      }
      expect(cache.length).toBe(tokens.length);
    });
  }

  it("logits depend on position (RoPE) and on earlier tokens (attention)", () => {
    const m = model();
    const a = m.forward(m.createCache(), [5, 6, 7]);
    const b = m.forward(m.createCache(), [8, 6, 7]);
    const c = m.forward(m.createCache(), [6, 7]);
    expect(maxDiff(a, b)).toBeGreaterThan(1e-3);
    expect(maxDiff(a, c)).toBeGreaterThan(1e-3);
  });

  it("a truncated cache continues exactly like a fresh one", () => {
    const m = model();
    const cache = m.createCache();
    m.forward(cache, [1, 2, 3, 4, 5]);
    cache.truncate(3);
    const resumed = m.forward(cache, [9, 10]);
    const fresh = m.forward(m.createCache(), [1, 2, 3, 9, 10]);
    expect(maxDiff(resumed, fresh)).toBeLessThan(1e-4);
  });

  it("copyPrefixTo gives another sequence the same state", () => {
    const m = model();
    const a = m.createCache();
    m.forward(a, [1, 2, 3, 4, 5]);
    const b = m.createCache();
    a.copyPrefixTo(b, 4);
    expect(b.length).toBe(4);
    expect(maxDiff(m.forward(b, [7]), m.forward(m.createCache(), [1, 2, 3, 4, 7]))).toBeLessThan(1e-4);
  });

  it("an F16 KV-cache stays close to F32", () => {
    const m = model();
    const f32 = m.forward(m.createCache({ kvType: "f32" }), tokens);
    const f16 = m.forward(m.createCache({ kvType: "f16" }), tokens);
    const d = maxDiff(f32, f16);
    expect(d).toBeGreaterThan(0);
    expect(d).toBeLessThan(1e-2);
  });

  it("linear RoPE scaling by s at position p equals no scaling at p/s", () => {
    const file = parseGGUF(synthesize(base));
    const scaled = parseGGUF(synthesize(base));
    scaled.metadata.set("llama.rope.scaling.type", "linear");
    scaled.metadata.set("llama.rope.scaling.factor", 2);
    expect(readModelConfig(scaled).rope.freqScale).toBe(0.5);
    // With one token the position is 0 whatever the scale; with more, scaling must change logits.
    const plain = loadModel(file, createJsBackend());
    const half = loadModel(scaled, createJsBackend());
    expect(maxDiff(plain.forward(plain.createCache(), [3]), half.forward(half.createCache(), [3]))).toBe(0);
    expect(maxDiff(plain.forward(plain.createCache(), [3, 4, 5]), half.forward(half.createCache(), [3, 4, 5]))).toBeGreaterThan(1e-4);
  });

  it("tied output reuses the token embeddings", () => {
    const m = model({ tiedOutput: true });
    expect(m.config.tiedOutput).toBe(true);
    expect(m.forward(m.createCache(), [1, 2])).toHaveLength(300);
  });

  it("refuses bad input with clear errors", () => {
    const m = model();
    expect(() => m.forward(m.createCache(), [300])).toThrow(/outside the vocabulary/);
    expect(() => m.forward(m.createCache(), [-1])).toThrow(/outside the vocabulary/);
    expect(() => m.forward(m.createCache(), [])).toThrow(/at least one token/);
    const small = m.createCache({ nCtx: 4 });
    expect(() => m.forward(small, [1, 2, 3, 4, 5])).toThrow(/context overflow/);
    expect(small.length).toBe(0);
    expect(() => [...generate(m, m.createCache({ nCtx: 8 }), { prompt: [1, 2, 3], maxTokens: 10 })]).toThrow(/context overflow/);
    const file = parseGGUF(synthesize(base));
    file.metadata.set("general.architecture", "mamba");
    expect(() => loadModel(file, createJsBackend())).toThrow(ModelConfigError);
    const noTensor = parseGGUF(synthesize(base));
    noTensor.tensors = noTensor.tensors.filter((t) => t.name !== "blk.1.ffn_up.weight");
    expect(() => loadModel(noTensor, createJsBackend())).toThrow(/missing tensor blk.1.ffn_up.weight/);
  });

  it("generate: greedy, teacher forcing and logits rows", () => {
    const m = model();
    const rows: Float32Array[] = [];
    const forced = [...generate(m, m.createCache(), { prompt: [1, 2], maxTokens: 4, force: [10, 11], onLogits: (l) => rows.push(l.slice()) })];
    expect(forced.slice(0, 2)).toEqual([10, 11]);
    expect(rows).toHaveLength(4);
    // Row 2 is the logits after prompt + [10, 11]: the same as a direct forward.
    expect(maxDiff(rows[2]!, m.forward(m.createCache(), [1, 2, 10, 11]))).toBeLessThan(1e-4);
  });
});

describe("batched forward", () => {
  it("a batch of sequences gives each the logits it gets alone, and fills each cache", () => {
    const m = model({ arch: "qwen2" });
    const prompts = [[1, 2, 3], [9], [4, 5, 6, 7, 8]];
    const alone = prompts.map((p) => m.forward(m.createCache(), p));
    const caches = prompts.map(() => m.createCache());
    // Sequences at different lengths: give the second one a history first.
    m.forward(caches[1]!, [30, 31]);
    const batched = m.forwardBatch(prompts.map((tokens, i) => ({ cache: caches[i]!, tokens })));
    expect(maxDiff(batched[0]!, alone[0]!)).toBeLessThan(1e-4);
    expect(maxDiff(batched[2]!, alone[2]!)).toBeLessThan(1e-4);
    expect(maxDiff(batched[1]!, m.forward(m.createCache(), [30, 31, 9]))).toBeLessThan(1e-4);
    expect(caches.map((c) => c.length)).toEqual([3, 3, 5]);
  });

  it("refuses the same sequence twice in one batch", () => {
    const m = model();
    const cache = m.createCache();
    expect(() => m.forwardBatch([{ cache, tokens: [1] }, { cache, tokens: [2] }])).toThrow(/only once/);
  });
});
