/**
 * float32 arithmetic as C computes it. A float64 +, −, ×, ÷ or √ of float32 operands, rounded once
 * to float32 (Math.fround), equals the float32 operation exactly (float64 has more than twice the
 * precision), so `f(a * b)` is C's `a * b` for floats a, b. Each C operation gets its own f().
 */
import { f32Bits } from "./half.ts";

export const f = Math.fround;

/**
 * ggml's nearest_int: adding 1.5·2^23 in float32 leaves the integer, rounded half to even, in the
 * low mantissa bits. `x` must already be a float32. Outside ±4194303 (ggml asserts, but release
 * builds go on) ggml returns whatever those bits hold, and so does this.
 */
export function nearestInt(x: number): number {
  const biased = f(x + 12582912);
  if (biased >= 8388608 && biased < 16777216) return biased - 12582912;
  return (f32Bits(biased) & 0x007fffff) - 0x00400000;
}

/** C's roundf: half away from zero. */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.floor(0.5 - x) : Math.floor(x + 0.5);
}

/**
 * C's conversion of a float to int8_t/uint8_t as x86 compilers emit it: cvttss2si truncates to
 * int32 (NaN and out-of-range values give INT32_MIN, whose low byte is 0), then the low byte is kept.
 * Returns that byte as a signed value.
 */
export function truncToInt8(v: number): number {
  if (!(Math.abs(v) < 2147483648)) return 0;
  return (Math.trunc(v) << 24) >> 24;
}

/** ggml's MAX(lo, MIN(hi, v)) for integers. */
export function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** The element of x[at..at+n) with the largest magnitude, sign kept; the first one on ties, 0 if all are 0. */
export function signedAbsMax(x: Float32Array, at: number, n: number): number {
  let amax = 0;
  let max = 0;
  for (let i = at; i < at + n; i++) {
    const ax = Math.abs(x[i]!);
    if (ax > amax) {
      amax = ax;
      max = x[i]!;
    }
  }
  return max;
}
