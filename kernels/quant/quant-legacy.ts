/**
 * Quantizers of the 32-element block types, byte-exact ports of ggml's quantize_row_*_ref
 * (the path ggml_quantize_chunk takes without an importance matrix). Every float operation is
 * rounded to float32 as C does (see f32-math.ts).
 */
import * as c32 from "./f32-math.ts";
import { putF16 } from "./half.ts";

// Local copies: under tsx and vitest an imported binding is a getter call on every use, too slow for
// per-element code (bundlers for Workers inline them anyway).
const { f, roundHalfAway, signedAbsMax, truncToInt8 } = c32;

const QK = 32;
const FLT_MAX = 3.4028234663852886e38;

/** Smallest and largest element of a block (±FLT_MAX, as in ggml, if no element compares). */
function blockRange(x: Float32Array, at: number): { min: number; max: number } {
  let min = FLT_MAX;
  let max = -FLT_MAX;
  for (let j = at; j < at + QK; j++) {
    if (x[j]! < min) min = x[j]!;
    if (x[j]! > max) max = x[j]!;
  }
  return { min, max };
}

// Quants go through C's float → int8 conversion (truncToInt8) and MIN, as in ggml: only inputs
// whose scale overflows (tiny blocks, infinities) ever leave the expected range.

/** d = max / −8, q = clamp(trunc(x/d + 8.5)) in 0..15. */
export function quantizeQ4_0(x: Float32Array, y: Uint8Array): void {
  for (let at = 0, b = 0; at < x.length; at += QK, b += 18) {
    const d = f(signedAbsMax(x, at, QK) / -8);
    const id = d !== 0 ? f(1 / d) : 0; // C's `d ?`: NaN counts as true
    putF16(y, b, d);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, truncToInt8(f(f(x[at + j]! * id) + 8.5)));
      const q1 = Math.min(15, truncToInt8(f(f(x[at + j + 16]! * id) + 8.5)));
      y[b + 2 + j] = q0 | (q1 << 4);
    }
  }
}

/** d = (max − min)/15, m = min, q = clamp(trunc((x − min)/d + 0.5)) in 0..15. */
export function quantizeQ4_1(x: Float32Array, y: Uint8Array): void {
  for (let at = 0, b = 0; at < x.length; at += QK, b += 20) {
    const { min, max } = blockRange(x, at);
    const d = f(f(max - min) / 15);
    const id = d !== 0 ? f(1 / d) : 0; // C's `d ?`: NaN counts as true
    putF16(y, b, d);
    putF16(y, b + 2, min);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, truncToInt8(f(f(f(x[at + j]! - min) * id) + 0.5)));
      const q1 = Math.min(15, truncToInt8(f(f(f(x[at + j + 16]! - min) * id) + 0.5)));
      y[b + 4 + j] = q0 | (q1 << 4);
    }
  }
}

/** Writes the fifth bits of a Q5 block's 32 quants, little-endian, at `at`. */
function putHighBits(y: Uint8Array, at: number, qh: number): void {
  y[at] = qh & 0xff;
  y[at + 1] = (qh >>> 8) & 0xff;
  y[at + 2] = (qh >>> 16) & 0xff;
  y[at + 3] = qh >>> 24;
}

/** d = max / −16, q = clamp(trunc(x/d + 16.5)) in 0..31. */
export function quantizeQ5_0(x: Float32Array, y: Uint8Array): void {
  for (let at = 0, b = 0; at < x.length; at += QK, b += 22) {
    const d = f(signedAbsMax(x, at, QK) / -16);
    const id = d !== 0 ? f(1 / d) : 0; // C's `d ?`: NaN counts as true
    putF16(y, b, d);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(31, truncToInt8(f(f(x[at + j]! * id) + 16.5)));
      const q1 = Math.min(31, truncToInt8(f(f(x[at + j + 16]! * id) + 16.5)));
      y[b + 6 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh |= (((q0 & 0x10) >> 4) << j) | (((q1 & 0x10) >> 4) << (j + 16));
    }
    putHighBits(y, b + 2, qh);
  }
}

/** d = (max − min)/31, m = min, q = trunc((x − min)/d + 0.5) in 0..31. */
export function quantizeQ5_1(x: Float32Array, y: Uint8Array): void {
  for (let at = 0, b = 0; at < x.length; at += QK, b += 24) {
    const { min, max } = blockRange(x, at);
    const d = f(f(max - min) / 31);
    const id = d !== 0 ? f(1 / d) : 0; // C's `d ?`: NaN counts as true
    putF16(y, b, d);
    putF16(y, b + 2, min);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = truncToInt8(f(f(f(x[at + j]! - min) * id) + 0.5));
      const q1 = truncToInt8(f(f(f(x[at + j + 16]! - min) * id) + 0.5));
      y[b + 8 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh |= (((q0 & 0x10) >> 4) << j) | (((q1 & 0x10) >> 4) << (j + 16));
    }
    putHighBits(y, b + 4, qh);
  }
}

/** d = amax/127, q = round(x/d) (half away from zero). */
export function quantizeQ8_0(x: Float32Array, y: Uint8Array): void {
  for (let at = 0, b = 0; at < x.length; at += QK, b += 34) {
    let amax = 0;
    for (let j = at; j < at + QK; j++) {
      const ax = Math.abs(x[j]!);
      amax = amax > ax ? amax : ax; // C's MAX: a NaN is kept only until the next comparison
    }
    const d = f(amax / 127);
    const id = d !== 0 ? f(1 / d) : 0; // C's `d ?`: NaN counts as true
    putF16(y, b, d);
    for (let j = 0; j < QK; j++) y[b + 2 + j] = truncToInt8(roundHalfAway(f(x[at + j]! * id)));
  }
}
