/**
 * Dequantizers of the 256-element K-quant super-blocks (ggml's dequantize_row_q2_K … q8_K).
 * Sub-block scales are an fp16 times a ≤ 8-bit integer, so every product below is exact in
 * float64 and needs at most one float32 rounding; differences of two float32 values computed in
 * float64 round to the same float32 as in ggml. Storing into the Float32Array does the rounding.
 */
import * as half from "./half.ts";
import * as scales from "./k-scales.ts";

// Local copies: under tsx and vitest an imported binding is a getter call on every use, too slow for
// per-element code (bundlers for Workers inline them anyway).
const { f32FromBits, f16At } = half;
const { minK4, scaleK3, scaleK4 } = scales;

const QK_K = 256;

/** Block: 16 scale/min nibble pairs, 64 bytes of 2-bit quants, d, dmin; x = d·sc·q − dmin·m. */
export function dequantizeQ2_K(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 84, o += QK_K) {
    const d = f16At(src, b + 80);
    const dmin = f16At(src, b + 82);
    let y = o;
    let is = 0;
    for (let q = b + 16; q < b + 80; q += 32) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 32; half += 16) {
          const sc = src[b + is++]!;
          const dl = d * (sc & 0xf);
          const ml = dmin * (sc >> 4);
          for (let l = 0; l < 16; l++) out[y++] = dl * ((src[q + half + l]! >> shift) & 3) - ml;
        }
      }
    }
  }
}

/** Block: 32 bytes of high bits, 64 bytes of 2-bit quants, 12 bytes of scales, d; x = d·sc·(q − 4·!high). */
export function dequantizeQ3_K(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 110, o += QK_K) {
    const d = f16At(src, b + 108);
    let y = o;
    let is = 0;
    let mask = 1;
    for (let q = b + 32; q < b + 96; q += 32) {
      for (let shift = 0; shift < 8; shift += 2, mask <<= 1) {
        for (let half = 0; half < 32; half += 16) {
          const dl = d * scaleK3(src, b + 96, is++);
          for (let l = half; l < half + 16; l++) {
            out[y++] = dl * (((src[q + l]! >> shift) & 3) - (src[b + l]! & mask ? 0 : 4));
          }
        }
      }
    }
  }
}

/** Block: d, dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles; x = d·sc·q − dmin·m. */
export function dequantizeQ4_K(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 144, o += QK_K) {
    const d = f16At(src, b);
    const dmin = f16At(src, b + 2);
    let y = o;
    for (let j = 0; j < 8; j += 2) {
      const q = b + 16 + j * 16;
      const d1 = d * scaleK4(src, b + 4, j), m1 = dmin * minK4(src, b + 4, j);
      const d2 = d * scaleK4(src, b + 4, j + 1), m2 = dmin * minK4(src, b + 4, j + 1);
      for (let l = 0; l < 32; l++) out[y++] = d1 * (src[q + l]! & 0xf) - m1;
      for (let l = 0; l < 32; l++) out[y++] = d2 * (src[q + l]! >> 4) - m2;
    }
  }
}

/** Block: d, dmin, 12 bytes of scales/mins, 32 bytes of fifth bits, 128 bytes of nibbles. */
export function dequantizeQ5_K(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 176, o += QK_K) {
    const d = f16At(src, b);
    const dmin = f16At(src, b + 2);
    const qh = b + 16;
    let y = o;
    for (let j = 0; j < 8; j += 2) {
      const ql = b + 48 + j * 16;
      const low = 1 << j, high = 2 << j;
      const d1 = d * scaleK4(src, b + 4, j), m1 = dmin * minK4(src, b + 4, j);
      const d2 = d * scaleK4(src, b + 4, j + 1), m2 = dmin * minK4(src, b + 4, j + 1);
      for (let l = 0; l < 32; l++) out[y++] = d1 * ((src[ql + l]! & 0xf) + (src[qh + l]! & low ? 16 : 0)) - m1;
      for (let l = 0; l < 32; l++) out[y++] = d2 * ((src[ql + l]! >> 4) + (src[qh + l]! & high ? 16 : 0)) - m2;
    }
  }
}

/** Block: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 signed scales, d; x = d·sc·(q − 32). */
export function dequantizeQ6_K(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 210, o += QK_K) {
    const d = f16At(src, b + 208);
    for (let n = 0; n < 2; n++) {
      const ql = b + 64 * n, qh = b + 128 + 32 * n, sc = b + 192 + 8 * n, y = o + 128 * n;
      for (let l = 0; l < 32; l++) {
        const is = sc + (l >> 4);
        const lo = src[ql + l]!, lo2 = src[ql + l + 32]!, hi = src[qh + l]!;
        out[y + l] = d * ((src[is]! << 24) >> 24) * (((lo & 0xf) | ((hi & 3) << 4)) - 32);
        out[y + l + 32] = d * ((src[is + 2]! << 24) >> 24) * (((lo2 & 0xf) | (((hi >> 2) & 3) << 4)) - 32);
        out[y + l + 64] = d * ((src[is + 4]! << 24) >> 24) * (((lo >> 4) | (((hi >> 4) & 3) << 4)) - 32);
        out[y + l + 96] = d * ((src[is + 6]! << 24) >> 24) * (((lo2 >> 4) | (((hi >> 6) & 3) << 4)) - 32);
      }
    }
  }
}

/** Block: d (float32), 256 signed bytes, 16 int16 group sums (unused here); x = d·q. */
export function dequantizeQ8_K(src: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 292, o += QK_K) {
    const d = f32FromBits(src[b]! | (src[b + 1]! << 8) | (src[b + 2]! << 16) | (src[b + 3]! << 24));
    for (let j = 0; j < QK_K; j++) out[o + j] = d * ((src[b + 4 + j]! << 24) >> 24);
  }
}
