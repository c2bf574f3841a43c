/**
 * Properties every quantizer must have, on random data, for all supported types (Q8_K has no ggml
 * fixture, so this is where it is checked): bounded reconstruction error, independent blocks,
 * and Q8_K's group sums.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GGMLType, TYPE_LAYOUT, typeName } from "../kernels/gguf/types.ts";
import { DEQUANTIZABLE_TYPES, dequantize } from "../kernels/quant/dequantize.ts";
import { QUANTIZABLE_TYPES, quantize } from "../kernels/quant/quantize.ts";

/**
 * Worst error allowed, as a fraction of the block's largest |x|: a little above what ggml's schemes
 * reach on this data (Q4_0/Q5_0 clamp the far side of the largest value, hence up to one step).
 */
const MAX_RELATIVE_ERROR: Partial<Record<GGMLType, number>> = {
  [GGMLType.F32]: 0, [GGMLType.F16]: 2 ** -11, [GGMLType.BF16]: 2 ** -8,
  [GGMLType.Q8_0]: 0.005, [GGMLType.Q8_K]: 0.005,
  [GGMLType.Q6_K]: 0.03, [GGMLType.Q5_0]: 0.065, [GGMLType.Q5_1]: 0.035, [GGMLType.Q5_K]: 0.05,
  [GGMLType.Q4_0]: 0.13, [GGMLType.Q4_1]: 0.07, [GGMLType.Q4_K]: 0.1,
  [GGMLType.Q3_K]: 0.25, [GGMLType.Q2_K]: 0.35,
};

/** 512 weight-like values (normal, occasional outliers) at a scale where fp16 block scales stay normal. */
const row = fc.tuple(fc.double({ min: -2, max: 2, noNaN: true }), fc.integer({ min: 1, max: 2 ** 30 })).map(([exponent, seed]) => {
  let s = seed;
  const uniform = () => ((s = (s * 1103515245 + 12345) % 2147483648) + 1) / 2147483649;
  return Float32Array.from({ length: 512 }, () => {
    const normal = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
    return normal * 10 ** exponent * (uniform() < 0.01 ? 20 : 1);
  });
});

describe("quantizer properties", () => {
  it("every quantizable type is dequantizable", () => {
    for (const t of QUANTIZABLE_TYPES) expect(DEQUANTIZABLE_TYPES, typeName(t)).toContain(t);
    expect(QUANTIZABLE_TYPES.length).toBe(Object.keys(MAX_RELATIVE_ERROR).length);
  });

  for (const type of QUANTIZABLE_TYPES) {
    const name = typeName(type);
    const blockSize = Math.max(TYPE_LAYOUT[type]!.blockSize, 32);

    it(`${name}: reconstruction error stays within ${MAX_RELATIVE_ERROR[type]} of each block's max |x|`, () => {
      fc.assert(
        fc.property(row, (x) => {
          const back = new Float32Array(x.length);
          dequantize(type, quantize(type, x), back);
          for (let b = 0; b < x.length; b += blockSize) {
            let amax = 0;
            for (let i = b; i < b + blockSize; i++) amax = Math.max(amax, Math.abs(x[i]!));
            for (let i = b; i < b + blockSize; i++) {
              if (!(Math.abs(back[i]! - x[i]!) <= amax * MAX_RELATIVE_ERROR[type]!)) return false;
            }
          }
          return true;
        }),
        { numRuns: 30, seed: 7 },
      );
    });

    it(`${name}: blocks are quantized independently`, () => {
      const x = Float32Array.from({ length: 1024 }, (_, i) => Math.sin(i * 0.7) * (1 + (i % 37)));
      const whole = quantize(type, x);
      const halves = [quantize(type, x.subarray(0, 512)), quantize(type, x.subarray(512))];
      expect([...whole]).toEqual([...halves[0]!, ...halves[1]!]);
    });
  }

  it("Q8_K: the largest |x| maps to ∓127, d = 1/iscale, each group sum is the sum of its 16 quants", () => {
    const x = Float32Array.from({ length: 256 }, (_, i) => Math.cos(i) * 3);
    x[77] = -5;
    const bytes = quantize(GGMLType.Q8_K, x);
    const view = new DataView(bytes.buffer);
    const d = view.getFloat32(0, true);
    const qs = new Int8Array(bytes.buffer, 4, 256);
    expect(qs[77]).toBe(-127); // iscale = −127/max
    expect(d).toBeCloseTo(5 / 127, 7);
    for (let g = 0; g < 16; g++) {
      let sum = 0;
      for (let i = 16 * g; i < 16 * g + 16; i++) sum += qs[i]!;
      expect(view.getInt16(260 + 2 * g, true)).toBe(sum);
    }
    const zeros = quantize(GGMLType.Q8_K, new Float32Array(256));
    expect(zeros.every((b) => b === 0)).toBe(true);
  });
});
