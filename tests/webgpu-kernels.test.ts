import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { GGMLType, TYPE_LAYOUT, typeName } from "../kernels/gguf/types.ts";
import { createJsBackend } from "../kernels/model/backends/js.ts";
import { generate } from "../kernels/model/generate.ts";
import { loadModel } from "../kernels/model/model.ts";
import { dequantize } from "../kernels/quant/dequantize.ts";
import { quantize } from "../kernels/quant/quantize.ts";
import { storage, storageFromFloats, storageWithData } from "../kernels/webgpu/buffers.ts";
import { BufferUsage, MAP_MODE_READ } from "../kernels/webgpu/constants.ts";
import { type WebGpuDevice, WebGpuUnavailableError, requestWebGpuDevice } from "../kernels/webgpu/device.ts";
import { generateOnGpu } from "../kernels/webgpu/generate.ts";
import { loadWebGpuModel } from "../kernels/webgpu/model.ts";
import { type Op, type OpContext, embedOp, matmulOp } from "../kernels/webgpu/ops.ts";
import { pipelinesOf } from "../kernels/webgpu/pipelines.ts";
import { uploadMatrix } from "../kernels/webgpu/weights.ts";
import { WEBGPU_WEIGHT_TYPES } from "../kernels/webgpu/wgsl/blocks.ts";
import { synthesize, type SynthSpec } from "../scripts/lib/synth.ts";
import { REFERENCE_DIR } from "./helpers/parity.ts";

// Kernel-level checks on the compatibility-mode OpenGL adapter (what CI has): each weight type's
// decoding, the matmul kernels and their epilogue, and the model runner's bookkeeping (chunked
// steps, split weights, cache copies, fp16 cache, errors) against the TS reference backend.

let gpu: WebGpuDevice;
beforeAll(async () => {
  gpu = await requestWebGpuDevice({ dawnBackends: ["opengl"], featureLevels: ["compatibility"], precision: "f32" });
});
afterAll(() => gpu?.destroy());

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 - 0.5) * 0.2;
  });
}

/** Records one op for n rows, then reads `bytes` of `out` back. */
async function run(op: Op, n: number, out: GPUBuffer, bytes: number, step: GPUBuffer): Promise<Float32Array> {
  const { device } = gpu;
  device.queue.writeBuffer(step, 0, Uint32Array.of(n, 0, 0, 0));
  const staging = device.createBuffer({ size: bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  op.encode(pass, n);
  pass.end();
  encoder.copyBufferToBuffer(out, 0, staging, 0, bytes);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(MAP_MODE_READ);
  const result = new Float32Array(staging.getMappedRange().slice(0));
  staging.destroy();
  return result;
}

function context(team: number): { ctx: OpContext; step: GPUBuffer } {
  const { device } = gpu;
  const step = device.createBuffer({ size: 16, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST });
  return { ctx: { device, pipelines: pipelinesOf(device), f16: false, noBias: storage(device, "no bias", 16), matvecTeam: team }, step };
}

/** A rows × cols matrix of `type` from random values, and its exact float32 dequantization. */
function matrixOf(type: GGMLType, rows: number, cols: number) {
  const bytes = quantize(type, random(rows * cols, type + 1));
  const values = new Float32Array(rows * cols);
  dequantize(type, bytes, values);
  return { bytes, values };
}

// Float types take any width that is a multiple of 4; block types whole blocks.
const colsOf = (type: GGMLType) => (TYPE_LAYOUT[type]!.blockSize === 1 ? 172 : 512);

describe("weight decoding", () => {
  for (const type of WEBGPU_WEIGHT_TYPES) {
    it(`${typeName(type)}: the embedding lookup returns ggml's dequantized rows bit for bit`, async () => {
      const rows = 37;
      const cols = colsOf(type);
      const { bytes, values } = matrixOf(type, rows, cols);
      // Three row ranges, so the lookup also crosses range boundaries.
      const m = uploadMatrix(gpu.device, "w", type, rows, cols, bytes, Math.ceil(bytes.length / 3) + 64);
      expect(m.ranges.length).toBeGreaterThan(1);
      const ids = [36, 0, 13, 36, 12, 25];
      const { ctx, step } = context(1);
      const idBuffer = storageWithData(gpu.device, "ids", new Uint8Array(Uint32Array.from(ids).buffer));
      const out = storage(gpu.device, "out", ids.length * cols * 4);
      const got = await run(await embedOp(ctx, m, idBuffer, out, step), ids.length, out, ids.length * cols * 4, step);
      const want = new Float32Array(ids.length * cols);
      ids.forEach((id, t) => want.set(values.subarray(id * cols, (id + 1) * cols), t * cols));
      expect(got).toEqual(want);
    });
  }
  it("rejects a type it cannot read, naming it", () => {
    expect(() => uploadMatrix(gpu.device, "w", GGMLType.Q8_K, 1, 256, new Uint8Array(292))).toThrow(/Q8_K/);
  });
});

describe("matmul kernels", () => {
  // matvec for 1 and a few tokens (one thread per row and sixteen), matmat for many.
  const cases = [
    { tokens: 1, team: 1 },
    { tokens: 5, team: 1 },
    { tokens: 1, team: 16 },
    { tokens: 7, team: 16 },
    { tokens: 40, team: 1 },
  ];
  for (const type of WEBGPU_WEIGHT_TYPES) {
    it(`${typeName(type)}: W·x (+ bias, + residual) within float32 rounding of a float64 dot`, async () => {
      const rows = 70;
      const cols = colsOf(type);
      const { bytes, values } = matrixOf(type, rows, cols);
      const m = uploadMatrix(gpu.device, "w", type, rows, cols, bytes, Math.ceil(bytes.length / 2) + 64);
      const bias = random(rows, 99);
      const residual = random(40 * rows, 98);
      for (const { tokens, team } of cases) {
        const x = random(tokens * cols, tokens);
        const { ctx, step } = context(team);
        const out = storage(gpu.device, "out", tokens * rows * 4);
        gpu.device.queue.writeBuffer(out, 0, residual.subarray(0, tokens * rows));
        const op = await matmulOp(ctx, m, storageFromFloats(gpu.device, "x", x), out, step, { bias: storageFromFloats(gpu.device, "b", bias), accumulate: true });
        const got = await run(op, tokens, out, tokens * rows * 4, step);
        for (let t = 0; t < tokens; t++) {
          for (let r = 0; r < rows; r++) {
            let dot = 0;
            let scale = 0;
            for (let c = 0; c < cols; c++) {
              dot += values[r * cols + c]! * x[t * cols + c]!;
              scale += Math.abs(values[r * cols + c]! * x[t * cols + c]!);
            }
            const want = residual[t * rows + r]! + dot + bias[r]!;
            expect(Math.abs(got[t * rows + r]! - want), `${tokens} tokens, team ${team}, t=${t} r=${r}`).toBeLessThan(1e-5 * (scale + 1));
          }
        }
      }
    });
  }
});

function maxDiffOverStd(got: Float32Array, want: Float32Array): number {
  let mean = 0;
  for (const v of want) mean += v;
  mean /= want.length;
  let variance = 0;
  let max = 0;
  for (let i = 0; i < want.length; i++) {
    variance += (want[i]! - mean) ** 2;
    max = Math.max(max, Math.abs(got[i]! - want[i]!));
  }
  return max / Math.sqrt(variance / want.length);
}

const fixture = (name: string) => parseGGUF(new Uint8Array(readFileSync(join(REFERENCE_DIR, name))));
const prompt = Array.from({ length: 23 }, (_, i) => (i * 37 + 11) % 512);

describe("model runner", () => {
  it("a prompt split into several steps, and split weights, give the same logits", async () => {
    const file = fixture("llama-Q4_K_M.gguf");
    const whole = await loadWebGpuModel(file, gpu);
    const pieces = await loadWebGpuModel(file, gpu, { maxBatch: 6, maxWeightBindingBytes: 40_000 });
    const a = await whole.forward(whole.createCache({ nCtx: 32 }), prompt, { allLogits: true });
    const b = await pieces.forward(pieces.createCache({ nCtx: 32 }), prompt, { allLogits: true });
    expect(b.length).toBe(prompt.length * 512);
    expect(maxDiffOverStd(b, a)).toBeLessThan(1e-5);
    whole.destroy();
    pieces.destroy();
  });

  it("sixteen threads per row (the GPU shape) match one thread per row", async () => {
    const file = fixture("llama-Q6_K.gguf");
    const one = await loadWebGpuModel(file, gpu, { matvecThreadsPerRow: 1 });
    const sixteen = await loadWebGpuModel(file, gpu, { matvecThreadsPerRow: 16 });
    const [c1, c16] = [one.createCache({ nCtx: 32 }), sixteen.createCache({ nCtx: 32 })];
    await one.forward(c1, prompt);
    await sixteen.forward(c16, prompt);
    for (const token of [3, 4, 5]) expect(maxDiffOverStd(await sixteen.forward(c16, [token]), await one.forward(c1, [token]))).toBeLessThan(1e-5);
    one.destroy();
    sixteen.destroy();
  });

  it("copyPrefixTo and truncate continue a sequence as if it had been fed again", async () => {
    const model = await loadWebGpuModel(fixture("llama-Q8_0.gguf"), gpu);
    const source = model.createCache({ nCtx: 40 });
    await model.forward(source, prompt);
    const fresh = await model.forward(model.createCache({ nCtx: 40 }), prompt);
    const copy = model.createCache({ nCtx: 40 });
    source.copyPrefixTo(copy, 15);
    expect(copy.length).toBe(15);
    expect(maxDiffOverStd(await model.forward(copy, prompt.slice(15)), fresh)).toBeLessThan(1e-5);
    source.truncate(10);
    expect(maxDiffOverStd(await model.forward(source, prompt.slice(10)), fresh)).toBeLessThan(1e-5);
    expect(() => source.copyPrefixTo(model.createCache({ nCtx: 41 }), 3)).toThrow(TypeError);
    model.destroy();
  });

  it("an fp16 cache matches the reference backend's fp16 cache", async () => {
    const file = fixture("qwen2-Q8_0.gguf");
    const model = await loadWebGpuModel(file, gpu);
    const reference = loadModel(file, createJsBackend());
    const [c, r] = [model.createCache({ nCtx: 32, kvType: "f16" }), reference.createCache({ nCtx: 32, kvType: "f16" })];
    expect(c.bytes).toBe(r.bytes);
    expect(maxDiffOverStd(await model.forward(c, prompt), reference.forward(r, prompt))).toBeLessThan(1e-4);
    expect(maxDiffOverStd(await model.forward(c, [7]), reference.forward(r, [7]))).toBeLessThan(1e-4);
    model.destroy();
  });

  // Shapes the fixtures lack: head size 128 (two dimensions per attention thread), more than two
  // 64-position attention blocks, Q4_K weights with NeoX rotation and biases in 128-wide rows.
  const shapes: [string, Partial<SynthSpec>][] = [
    ["llama, head size 128, 150 positions", { arch: "llama", nEmbd: 256, nHead: 2, nHeadKv: 1, type: GGMLType.F16 }],
    ["qwen2, Q4_K weights", { arch: "qwen2", nEmbd: 256, nHead: 4, nHeadKv: 2, type: GGMLType.Q4_K }],
  ];
  for (const [name, spec] of shapes) {
    it(`${name}: matches the reference backend`, async () => {
      const file = parseGGUF(synthesize({ nLayer: 2, nFf: 192, vocab: 300, seed: 5, nCtx: 256, ...spec } as SynthSpec));
      const model = await loadWebGpuModel(file, gpu);
      const reference = loadModel(file, createJsBackend());
      const long = Array.from({ length: 150 }, (_, i) => (i * 7 + 1) % 300);
      const [c, r] = [model.createCache({ nCtx: 160 }), reference.createCache({ nCtx: 160 })];
      expect(maxDiffOverStd(await model.forward(c, long, { allLogits: true }), reference.forward(r, long, { allLogits: true }))).toBeLessThan(1e-4);
      expect(maxDiffOverStd(await model.forward(c, [9]), reference.forward(r, [9]))).toBeLessThan(1e-4);
      model.destroy();
    });
  }

  it("generateOnGpu continues a prompt as generate() does on the reference backend", async () => {
    const file = fixture("stories260K.gguf");
    const model = await loadWebGpuModel(file, gpu);
    const reference = loadModel(file, createJsBackend());
    const opts = { prompt: [1, 300, 301], maxTokens: 12, force: [5] };
    const ours: number[] = [];
    for await (const token of generateOnGpu(model, model.createCache({ nCtx: 16 }), opts)) ours.push(token);
    expect(ours).toEqual([...generate(reference, reference.createCache({ nCtx: 16 }), opts)]);
    model.destroy();
  });

  it("rejects bad input with a clear error", async () => {
    const model = await loadWebGpuModel(fixture("stories260K.gguf"), gpu);
    const cache = model.createCache({ nCtx: 4 });
    await expect(model.forward(cache, [512])).rejects.toThrow(/outside the vocabulary/);
    await expect(model.forward(cache, [])).rejects.toThrow(/at least one token/);
    await expect(model.forward(cache, [1, 2, 3, 4, 5])).rejects.toThrow(/context overflow/);
    await expect(model.forward(loadModel(fixture("stories260K.gguf"), createJsBackend()).createCache({ nCtx: 4 }), [1])).rejects.toThrow(TypeError);
    expect(cache.length).toBe(0);
    // A failed load frees what it made and leaves the device usable.
    await expect(loadWebGpuModel(fixture("stories260K.gguf"), gpu, { maxWeightBindingBytes: 64 })).rejects.toThrow(/exceeds/);
    expect((await model.forward(cache, [1])).length).toBe(512);
    model.destroy();
  });
});

describe("device selection", () => {
  it("names every adapter it tried when none fits", async () => {
    const failure = requestWebGpuDevice({ dawnBackends: ["opengl"], featureLevels: ["compatibility"], precision: "f16" });
    await expect(failure).rejects.toThrow(WebGpuUnavailableError);
    await expect(failure).rejects.toThrow(/Dawn backend=opengl featureLevel=compatibility: .*llvmpipe.* has no shader-f16/);
  });
});
