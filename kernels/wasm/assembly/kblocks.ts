// Shared pieces of the K-quant kernels (256-element super-blocks against Q8_K activations).
//
// ggml's scalar K-quant kernels keep eight i32 lanes, lane l summing the products of the
// elements at positions ≡ l (mod 8), scaled per sub-block, and fold them into eight float
// lanes once per super-block. Here a group of 16 weights is unpacked to the i16 order
// q0,q8,q1,q9,…,q7,q15 (the activations are stored in the same order), so one i32x4.dot_i16x8_s
// yields lanes 0..3 and a second one lanes 4..7: the very integers ggml has, then the very
// float operations.
import { ACT_K_D } from "./layout";

/** Bytes (unsigned, < 128) 0..7 and 8..15 of a group, interleaved and widened: lanes 0..3 of ggml. */
// @ts-ignore: decorator
@inline export function pairsLow(bytes: v128): v128 {
  return i8x16.swizzle(bytes, v128(0, -1, 8, -1, 1, -1, 9, -1, 2, -1, 10, -1, 3, -1, 11, -1));
}

/** The same for lanes 4..7: bytes 4..7 interleaved with 12..15. */
// @ts-ignore: decorator
@inline export function pairsHigh(bytes: v128): v128 {
  return i8x16.swizzle(bytes, v128(4, -1, 12, -1, 5, -1, 13, -1, 6, -1, 14, -1, 7, -1, 15, -1));
}

/** Lanes 0..3 of a group of 16 quants (bytes) times the activation group at a. */
// @ts-ignore: decorator
@inline export function groupDotLow(quants: v128, a: usize): v128 {
  return i32x4.dot_i16x8_s(pairsLow(quants), v128.load(a));
}

// @ts-ignore: decorator
@inline export function groupDotHigh(quants: v128, a: usize): v128 {
  return i32x4.dot_i16x8_s(pairsHigh(quants), v128.load(a, 16));
}

/** The same with `offset` subtracted from every quant first (Q3_K's 4, Q6_K's 32). */
// @ts-ignore: decorator
@inline export function groupDotLowOffset(quants: v128, a: usize, offset: i16): v128 {
  return i32x4.dot_i16x8_s(i16x8.sub(pairsLow(quants), i16x8.splat(offset)), v128.load(a));
}

// @ts-ignore: decorator
@inline export function groupDotHighOffset(quants: v128, a: usize, offset: i16): v128 {
  return i32x4.dot_i16x8_s(i16x8.sub(pairsHigh(quants), i16x8.splat(offset)), v128.load(a, 16));
}

/** Bit `bit` of each byte of `bits`, as `value` (a power of two) or 0 per byte. */
// @ts-ignore: decorator
@inline export function bitAsByte(bits: v128, bit: i32, value: i8): v128 {
  const one: i32 = 1;
  const mask = i8x16.splat(<i8>(one << bit));
  return v128.and(i8x16.eq(v128.and(bits, mask), mask), i8x16.splat(value));
}

/** sums[l] += d · aux[l] for four lanes: ggml's per-super-block float step. */
// @ts-ignore: decorator
@inline export function addScaled(sums: v128, d: f32, aux: v128): v128 {
  return f32x4.add(sums, f32x4.mul(f32x4.splat(d), f32x4.convert_i32x4_s(aux)));
}

/** aux += part · scale (i32 lanes). */
// @ts-ignore: decorator
@inline export function addTimesScale(aux: v128, part: v128, scale: i32): v128 {
  return i32x4.add(aux, i32x4.mul(part, i32x4.splat(scale)));
}

/** ggml's end of row: sumf += sums[0]; …; sumf += sums[7]. */
// @ts-ignore: decorator
@inline export function finishLanes(sumf: f32, low: v128, high: v128): f32 {
  sumf += f32x4.extract_lane(low, 0);
  sumf += f32x4.extract_lane(low, 1);
  sumf += f32x4.extract_lane(low, 2);
  sumf += f32x4.extract_lane(low, 3);
  sumf += f32x4.extract_lane(high, 0);
  sumf += f32x4.extract_lane(high, 1);
  sumf += f32x4.extract_lane(high, 2);
  return sumf + f32x4.extract_lane(high, 3);
}

/** Σ over the lanes of an i32x4. */
// @ts-ignore: decorator
@inline export function sumI32(v: v128): i32 {
  const s = i32x4.add(v, v128.shuffle<i32>(v, v, 2, 3, 0, 1));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1);
}

/** The activation super-block's d. */
// @ts-ignore: decorator
@inline export function actD(a: usize): f32 {
  return load<f32>(a, ACT_K_D);
}
