// Small lane-shuffling helpers shared by the dot-product kernels.

/** [Σa, Σb, Σc, Σd] of four i32x4 vectors: one row's block sum per lane. */
// @ts-ignore: decorator
@inline export function sumEach4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7));
}

/** [Σa, Σb, Σc, Σd] of four f32x4 vectors, each summed as (x0 + x2) + (x1 + x3). */
// @ts-ignore: decorator
@inline export function sumEach4F(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/**
 * From four vectors each holding two partial sums per token ([a, a, b, b]): the four first
 * tokens' sums (lane = 0) or the four second tokens' (lane = 2).
 */
// @ts-ignore: decorator
@inline export function sumHalves4(p0: v128, p1: v128, p2: v128, p3: v128, lane: u8): v128 {
  const x01 = lane == 0 ? v128.shuffle<i32>(p0, p1, 0, 1, 4, 5) : v128.shuffle<i32>(p0, p1, 2, 3, 6, 7);
  const x23 = lane == 0 ? v128.shuffle<i32>(p2, p3, 0, 1, 4, 5) : v128.shuffle<i32>(p2, p3, 2, 3, 6, 7);
  return i32x4.add(v128.shuffle<i32>(x01, x23, 0, 2, 4, 6), v128.shuffle<i32>(x01, x23, 1, 3, 5, 7));
}

/** Four u16 values, one from each pointer (plus offset), in the high halves of four i32 lanes. */
// @ts-ignore: decorator
@inline export function gatherU16High(p0: usize, p1: usize, p2: usize, p3: usize, offset: usize): v128 {
  let v = v128.load_lane<u16>(p0 + offset, i32x4.splat(0), 1);
  v = v128.load_lane<u16>(p1 + offset, v, 3);
  v = v128.load_lane<u16>(p2 + offset, v, 5);
  return v128.load_lane<u16>(p3 + offset, v, 7);
}

/** Stores the first n (1..4) lanes of v at p, p + step, p + 2·step and p + 3·step. */
// @ts-ignore: decorator
@inline export function storeSpaced(p: usize, step: usize, v: v128, n: i32): void {
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (n > 1) store<f32>(p + step, f32x4.extract_lane(v, 1));
  if (n > 2) store<f32>(p + 2 * step, f32x4.extract_lane(v, 2));
  if (n > 3) store<f32>(p + 3 * step, f32x4.extract_lane(v, 3));
}

/**
 * Tokens per chunk of a batch: their activations (tokenBytes each) stay within 256 KiB, half of
 * a typical L2, while the weights are read once per chunk (68 tokens at 1536 columns of Q8_0).
 */
// @ts-ignore: decorator
@inline export function tokensPerChunk(tokenBytes: usize): i32 {
  return max(1, <i32>(<usize>(256 << 10) / tokenBytes));
}
