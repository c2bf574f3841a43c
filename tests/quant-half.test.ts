/** fp16 / bf16 conversions and the float tensor types. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GGMLType } from "../kernels/gguf/types.ts";
import { dequantize } from "../kernels/quant/dequantize.ts";
import { bf16ToF32, f16ToF32, f32Bits, f32FromBits, f32ToBf16, f32ToF16 } from "../kernels/quant/half.ts";
import { quantize } from "../kernels/quant/quantize.ts";

/** An fp16's value from its fields, by the IEEE formula (independent of the table in half.ts). */
function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (exp === 0 ? mant * 2 ** -24 : (1 + mant / 1024) * 2 ** (exp - 15));
}

const isNaN16 = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

describe("fp16 → f32", () => {
  it("decodes every one of the 65536 values exactly, keeping the sign of zero and NaN payloads", () => {
    const wrong: string[] = [];
    for (let h = 0; h < 65536; h++) {
      const v = f16ToF32(h);
      const right = isNaN16(h) ? Number.isNaN(v) : Object.is(v, f16Value(h));
      if (!right) wrong.push(`0x${h.toString(16)} → ${v}`);
    }
    expect(wrong).toEqual([]);
    const out = new Float32Array(2);
    dequantize(GGMLType.F16, new Uint8Array([0x01, 0x7e, 0x55, 0xfd]), out); // quiet NaN payload 1, signalling NaN 0x155
    expect([...new Uint32Array(out.buffer)]).toEqual([0x7fc02000, 0xffaaa000]);
  });
});

describe("f32 → fp16", () => {
  it("inverts the decoding for every non-NaN fp16", () => {
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) if (!isNaN16(h) && f32ToF16(f16ToF32(h)) !== h) wrong.push(h);
    expect(wrong).toEqual([]);
  });

  it("rounds to nearest, ties to even, in normal and subnormal ranges", () => {
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie between 1 and 1+2^-10: even is 1
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie between 1+2^-10 and 1+2^-9: even is the upper
    expect(f32ToF16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above the tie
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // half the smallest subnormal: tie to even zero
    expect(f32ToF16(3 * 2 ** -25)).toBe(0x0002); // 1.5 × smallest subnormal: tie to even 2
    expect(f32ToF16(2 ** -25 + 2 ** -40)).toBe(0x0001);
    expect(f32ToF16(-(2 ** -24))).toBe(0x8001);
    expect(f32ToF16(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up from the subnormals into the smallest normal
    expect(f32ToF16(-0)).toBe(0x8000);
  });

  it("overflows to infinity from 65520 up, and maps NaN to ggml's quiet NaN", () => {
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65519.996)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00);
    expect(f32ToF16(-1e10)).toBe(0xfc00);
    expect(f32ToF16(Infinity)).toBe(0x7c00);
    expect(f32ToF16(-Infinity)).toBe(0xfc00);
    expect(f32ToF16(NaN)).toBe(0x7e00);
    expect(f32ToF16(f32FromBits(0xff800001))).toBe(0xfe00);
  });

  it("picks the nearest fp16 for any float (checked against its neighbours)", () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true, min: -65000, max: 65000 }), (x) => {
        const xf = Math.fround(x);
        const h = f32ToF16(xf);
        const err = Math.abs(f16Value(h) - xf);
        return [h - 1, h + 1]
          .filter((n) => n >= 0 && (n & 0x7fff) <= 0x7bff && ((n ^ h) & 0x8000) === 0)
          .every((n) => {
            const other = Math.abs(f16Value(n) - xf);
            return err < other || (err === other && (h & 1) === 0);
          });
      }),
      { numRuns: 20_000, seed: 42 },
    );
  });
});

describe("bf16", () => {
  it("rounds to nearest even, keeps infinities, quiets NaN", () => {
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(f32ToBf16(f32FromBits(0x3f808000))).toBe(0x3f80); // tie, even below
    expect(f32ToBf16(f32FromBits(0x3f818000))).toBe(0x3f82); // tie, even above
    expect(f32ToBf16(f32FromBits(0x3f808001))).toBe(0x3f81);
    expect(f32ToBf16(f32FromBits(0x7f7fffff))).toBe(0x7f80); // max float rounds to inf
    expect(f32ToBf16(-Infinity)).toBe(0xff80);
    expect(f32ToBf16(f32FromBits(0x7f800001))).toBe(0x7fc0);
    expect(bf16ToF32(0xc040)).toBe(-3);
  });
});

describe("float tensor types", () => {
  const values = Float32Array.from([0, -0, 1, -2.5, 1e-8, 65504, 70000, Infinity, 3.14159, f32FromBits(0x7fa00001)]);

  it("F32 round-trips bits exactly, from unaligned bytes too", () => {
    const bytes = quantize(GGMLType.F32, values);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const out = new Float32Array(values.length);
    dequantize(GGMLType.F32, shifted.subarray(1), out);
    expect([...new Uint32Array(out.buffer)]).toEqual([...new Uint32Array(values.buffer)]);
  });

  it("F16 and BF16 store each value rounded, and decode it back", () => {
    for (const [type, encode, decode] of [
      [GGMLType.F16, f32ToF16, f16ToF32],
      [GGMLType.BF16, f32ToBf16, bf16ToF32],
    ] as const) {
      const bytes = quantize(type, values);
      const halves = new Uint16Array(bytes.buffer);
      expect([...halves]).toEqual([...values].map((v) => encode(v)));
      const out = new Float32Array(values.length);
      dequantize(type, bytes, out);
      for (let i = 0; i < values.length; i++) expect(f32Bits(out[i]!)).toBe(f32Bits(decode(halves[i]!)));
    }
  });
});
