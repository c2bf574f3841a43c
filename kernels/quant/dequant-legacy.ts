/**
 * Dequantizers of the 32-element block types (ggml's dequantize_row_q4_0 … q8_0).
 * Each product of a small integer and an fp16 scale is exact in float32, and a float64 sum of two
 * float32 values rounds to the same float32 as a float32 sum, so plain JS arithmetic stored into
 * the Float32Array reproduces ggml bit for bit.
 */
import * as half from "./half.ts";

// Local copies: under tsx and vitest an imported binding is a getter call on every use, too slow for
// per-element code (bundlers for Workers inline them anyway).
const { f16At } = half;

const QK = 32;

/** Block: d (fp16), 16 bytes of nibbles; x = (q − 8)·d, low nibbles first. */
export function dequantizeQ4_0(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 18, o += QK) {
    const d = f16At(src, b);
    for (let j = 0; j < 16; j++) {
      const q = src[b + 2 + j]!;
      out[o + j] = ((q & 0xf) - 8) * d;
      out[o + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

/** Block: d, m (fp16), 16 bytes of nibbles; x = q·d + m. */
export function dequantizeQ4_1(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 20, o += QK) {
    const d = f16At(src, b);
    const m = f16At(src, b + 2);
    for (let j = 0; j < 16; j++) {
      const q = src[b + 4 + j]!;
      out[o + j] = (q & 0xf) * d + m;
      out[o + j + 16] = (q >> 4) * d + m;
    }
  }
}

/** The 32 fifth bits of a Q5 block, little-endian at `at`. */
function highBits(src: Uint8Array, at: number): number {
  return src[at]! | (src[at + 1]! << 8) | (src[at + 2]! << 16) | (src[at + 3]! << 24);
}

/** Block: d (fp16), 32 high bits, 16 bytes of nibbles; x = (q − 16)·d. */
export function dequantizeQ5_0(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 22, o += QK) {
    const d = f16At(src, b);
    const qh = highBits(src, b + 2);
    for (let j = 0; j < 16; j++) {
      const q = src[b + 6 + j]!;
      out[o + j] = (((q & 0xf) | (((qh >>> j) << 4) & 0x10)) - 16) * d;
      out[o + j + 16] = (((q >> 4) | ((qh >>> (j + 12)) & 0x10)) - 16) * d;
    }
  }
}

/** Block: d, m (fp16), 32 high bits, 16 bytes of nibbles; x = q·d + m. */
export function dequantizeQ5_1(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 24, o += QK) {
    const d = f16At(src, b);
    const m = f16At(src, b + 2);
    const qh = highBits(src, b + 4);
    for (let j = 0; j < 16; j++) {
      const q = src[b + 8 + j]!;
      out[o + j] = ((q & 0xf) | (((qh >>> j) << 4) & 0x10)) * d + m;
      out[o + j + 16] = ((q >> 4) | ((qh >>> (j + 12)) & 0x10)) * d + m;
    }
  }
}

/** Block: d (fp16), 32 signed bytes; x = q·d. */
export function dequantizeQ8_0(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 34, o += QK) {
    const d = f16At(src, b);
    for (let j = 0; j < QK; j++) out[o + j] = ((src[b + 2 + j]! << 24) >> 24) * d;
  }
}
