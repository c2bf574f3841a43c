/**
 * Quantizers and dequantizers against ggml's own output: the quant fixtures (8 rows of edge
 * cases, see fixtures/reference/README.md "quant/") and the fixture models, whose quantized
 * tensors llama.cpp made from llama-F32.gguf's.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseGGUF, tensorBytes } from "../kernels/gguf/reader.ts";
import { GGMLType, typeFromName, typeName } from "../kernels/gguf/types.ts";
import { dequantize } from "../kernels/quant/dequantize.ts";
import { quantize } from "../kernels/quant/quantize.ts";

const QUANT_DIR = new URL("./fixtures/reference/quant/", import.meta.url).pathname;
const MODEL_DIR = new URL("./fixtures/reference/", import.meta.url).pathname;
const TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"];

function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(QUANT_DIR + name));
}

const manifest = JSON.parse(readFileSync(QUANT_DIR + "quant.json", "utf8")) as {
  rows: number;
  n_per_row: number;
  types: Record<string, { ggml_type: number; bytes: number }>;
};
const rows = new Float32Array(fixture("rows.f32").buffer);

/** Index of the first differing element, or -1. */
function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

describe("quant fixtures", () => {
  it("cover the types the manifest lists", () => {
    expect(rows.length).toBe(manifest.rows * manifest.n_per_row);
    expect(Object.keys(manifest.types).sort()).toEqual([...TYPES].sort());
    for (const t of TYPES) expect(typeFromName(t)).toBe(manifest.types[t]!.ggml_type);
  });

  for (const name of TYPES) {
    const type = typeFromName(name)!;

    it(`${name}: quantize reproduces ggml's bytes`, () => {
      const expected = fixture(`${name}.bin`);
      expect(expected.length).toBe(manifest.types[name]!.bytes);
      expect(firstDifference(quantize(type, rows), expected)).toBe(-1);
    });

    it(`${name}: dequantize reproduces ggml's floats bit for bit, from any byte offset`, () => {
      const blocks = fixture(`${name}.bin`);
      const expected = new Uint32Array(fixture(`${name}.deq.f32`).buffer);
      for (const shift of [0, 1, 3]) {
        const shifted = new Uint8Array(blocks.length + shift);
        shifted.set(blocks, shift);
        const out = new Float32Array(rows.length);
        dequantize(type, shifted.subarray(shift), out);
        expect(firstDifference(new Uint32Array(out.buffer), expected)).toBe(-1);
      }
    });

    it(`${name}: dequantizes row by row into a shared buffer like a matmul does`, () => {
      const blocks = fixture(`${name}.bin`);
      const expected = new Uint32Array(fixture(`${name}.deq.f32`).buffer);
      const rowBytes = blocks.length / manifest.rows;
      const n = manifest.n_per_row;
      const out = new Float32Array(2 * n);
      for (let r = 0; r < manifest.rows; r++) {
        const half = out.subarray((r % 2) * n, (r % 2) * n + n); // a view at a non-zero offset every other row
        dequantize(type, blocks.subarray(r * rowBytes, (r + 1) * rowBytes), half);
        expect(firstDifference(new Uint32Array(half.buffer, half.byteOffset, n), expected.subarray(r * n, (r + 1) * n))).toBe(-1);
      }
    });
  }
});

describe("fixture models", () => {
  const f32 = parseGGUF(new Uint8Array(readFileSync(MODEL_DIR + "llama-F32.gguf")));
  const source = new Map(f32.tensors.map((t) => [t.name, t]));
  const ROWS_PER_TENSOR = 2; // rows are quantized independently: a few per tensor cover every type cheaply

  for (const model of ["F16", "Q2_K", "Q3_K_M", "Q4_0", "Q4_1", "Q4_K_M", "Q5_0", "Q5_1", "Q5_K_M", "Q6_K", "Q8_0"]) {
    it(`llama-${model}: quantizing llama-F32's rows gives llama.cpp's tensor bytes`, () => {
      const file = parseGGUF(new Uint8Array(readFileSync(`${MODEL_DIR}llama-${model}.gguf`)));
      const checked = new Set<string>();
      for (const t of file.tensors) {
        const n = t.dims[0]!;
        const count = Math.min(ROWS_PER_TENSOR, t.nElements / n);
        const raw = tensorBytes(f32, source.get(t.name)!).slice(0, count * n * 4);
        const ours = quantize(t.type, new Float32Array(raw.buffer));
        const theirs = tensorBytes(file, t).subarray(0, ours.length);
        expect(firstDifference(ours, theirs), `${t.name} (${typeName(t.type)})`).toBe(-1);
        checked.add(typeName(t.type));
      }
      expect(checked).toContain(model.replace(/_M$/, ""));
    });
  }
});

describe("dequantize input checks", () => {
  it("refuses a source of the wrong size or an unsupported type", () => {
    const out = new Float32Array(32);
    expect(() => dequantize(GGMLType.Q4_0, new Uint8Array(17), out)).toThrow(RangeError);
    expect(() => dequantize(GGMLType.Q4_0, new Uint8Array(18), new Float32Array(33))).toThrow(RangeError);
    expect(() => dequantize(GGMLType.Q8_1, new Uint8Array(36), out)).toThrow(/cannot dequantize .*Q8_1/);
    expect(() => quantize(GGMLType.Q4_K, new Float32Array(255))).toThrow(RangeError);
  });
});
