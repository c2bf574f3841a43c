import { describe, expect, it } from "vitest";
import { GGMLType, rowBytes, typeName } from "../kernels/gguf/types.ts";
import { dequantize } from "../kernels/quant/dequantize.ts";
import { createWasmBackend } from "../kernels/wasm/backend.ts";
import { ggmlVecDot } from "./wasm-reference/ggml-vec-dot.ts";
import { activations, seeded, weights } from "./wasm-reference/random.ts";

const QUANTIZED = [GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q8_0, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K];
const FLOATS = [GGMLType.F32, GGMLType.F16];
const isK = (type: GGMLType) => type >= GGMLType.Q2_K && type <= GGMLType.Q6_K;

/** Columns that exercise several blocks (and, for floats, a ragged tail). */
const colsFor = (type: GGMLType) => (isK(type) ? 512 : FLOATS.includes(type) ? 172 : 160);

async function matmul(type: GGMLType, rows: number, cols: number, w: Uint8Array, x: Float32Array, nTokens: number) {
  const backend = await createWasmBackend();
  const weight = backend.loadWeight({ name: "w", type, rows, cols, bytes: w });
  const out = new Float32Array(nTokens * rows);
  backend.matmul(out, weight, x, nTokens);
  return out;
}

describe("wasm matmul reproduces ggml's quantized dot products bit for bit", () => {
  for (const type of QUANTIZED) {
    for (const kind of ["quantized", "raw"] as const) {
      it(`${typeName(type)}, ${kind} blocks`, async () => {
        const random = seeded(type * 31 + (kind === "raw" ? 7 : 0));
        const rows = 9; // not a multiple of 4: the kernels' spare lanes must not leak
        const cols = colsFor(type);
        const nTokens = 3;
        const w = weights(random, type, rows, cols, kind);
        const x = activations(random, nTokens * cols);
        const out = await matmul(type, rows, cols, w, x, nTokens);
        const rb = rowBytes(type, cols);
        for (let t = 0; t < nTokens; t++) {
          for (let r = 0; r < rows; r++) {
            const expected = ggmlVecDot(type, w.subarray(r * rb, (r + 1) * rb), x.subarray(t * cols, (t + 1) * cols));
            expect(out[t * rows + r], `token ${t} row ${r}`).toBe(Math.fround(expected));
          }
        }
      });
    }
  }
});

describe("wasm matmul of float weights", () => {
  for (const type of FLOATS) {
    it(`${typeName(type)} matches a float64 dot product (activations rounded to fp16 for F16)`, async () => {
      const random = seeded(100 + type);
      const rows = 7;
      const cols = colsFor(type);
      const w = weights(random, type, rows, cols, "raw");
      const x = activations(random, 2 * cols);
      const out = await matmul(type, rows, cols, w, x, 2);
      const rb = rowBytes(type, cols);
      for (let t = 0; t < 2; t++) {
        for (let r = 0; r < rows; r++) {
          const expected = ggmlVecDot(type, w.subarray(r * rb, (r + 1) * rb), x.subarray(t * cols, (t + 1) * cols));
          expect(Math.abs(out[t * rows + r]! - expected)).toBeLessThan(1e-5 * (1 + Math.abs(expected)));
        }
      }
    });
  }
});

describe("a batch is the same as one token at a time", () => {
  for (const type of [...FLOATS, ...QUANTIZED]) {
    it(typeName(type), async () => {
      const random = seeded(200 + type);
      const rows = 45; // several groups of four and of eight rows, the last ones ragged
      const cols = colsFor(type);
      const nTokens = 5;
      const w = weights(random, type, rows, cols, "quantized");
      const x = activations(random, nTokens * cols);
      const batch = await matmul(type, rows, cols, w, x, nTokens);
      for (let t = 0; t < nTokens; t++) {
        const single = await matmul(type, rows, cols, w, x.slice(t * cols, (t + 1) * cols), 1);
        expect(batch.subarray(t * rows, (t + 1) * rows)).toEqual(single);
      }
    });
  }
});

describe("getRows", () => {
  for (const type of [...FLOATS, ...QUANTIZED]) {
    it(`${typeName(type)} returns the dequantized rows`, async () => {
      const random = seeded(300 + type);
      const rows = 6;
      const cols = colsFor(type);
      const w = weights(random, type, rows, cols, "quantized");
      const backend = await createWasmBackend();
      const weight = backend.loadWeight({ name: "embd", type, rows, cols, bytes: w });
      const ids = [5, 0, 5, 2];
      const out = new Float32Array(ids.length * cols);
      backend.getRows(out, weight, ids);
      const rb = rowBytes(type, cols);
      ids.forEach((id, t) => {
        const expected = new Float32Array(cols);
        dequantize(type, w.subarray(id * rb, (id + 1) * rb), expected);
        expect(out.subarray(t * cols, (t + 1) * cols)).toEqual(expected);
      });
      expect(() => backend.getRows(new Float32Array(cols), weight, [rows])).toThrow(RangeError);
    });
  }
});

describe("loadWeight", () => {
  it("rejects a byte count that does not match the shape, and types without a kernel", async () => {
    const backend = await createWasmBackend();
    const before = backend.memoryBytes;
    expect(() => backend.loadWeight({ name: "w", type: GGMLType.Q8_0, rows: 2, cols: 32, bytes: new Uint8Array(67) })).toThrow(RangeError);
    expect(() => backend.loadWeight({ name: "w", type: GGMLType.BF16, rows: 1, cols: 32, bytes: new Uint8Array(64) })).toThrow(/no kernel/);
    expect(backend.memoryBytes).toBe(before);
  });

  it("loadWeightFrom lets a loader write the blocks straight into linear memory", async () => {
    const random = seeded(400);
    const type = GGMLType.Q4_K, rows = 5, cols = 256;
    const w = weights(random, type, rows, cols, "quantized");
    const x = activations(random, cols);
    const backend = await createWasmBackend();
    const direct = backend.loadWeightFrom({ name: "w", type, rows, cols }, (dst) => dst.set(w));
    const copied = backend.loadWeight({ name: "w", type, rows, cols, bytes: w });
    const [a, b] = [new Float32Array(rows), new Float32Array(rows)];
    backend.matmul(a, direct, x, 1);
    backend.matmul(b, copied, x, 1);
    expect(a).toEqual(b);
  });
});
