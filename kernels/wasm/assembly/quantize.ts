// Activation quantizers: ggml's reference arithmetic (quantize_row_q8_0/q8_1/q8_K_ref), written
// into the kernel-friendly layouts of layout.ts. Integer results are bit-identical to ggml's.
import { f16ToF32, f32ToF16 } from "./half";
import {
  ACT_BLOCK_BYTES, ACT_D, ACT_K_BLOCK_BYTES, ACT_K_BSUMS, ACT_K_D, ACT_S, ACT_SUM, ORDER_NIBBLES, ORDER_NIBBLES_SCALED,
} from "./layout";

/** C's roundf on four lanes: nearest integer, ties away from zero. */
// @ts-ignore: decorator
@inline function roundHalfAway(x: v128): v128 {
  const ax = f32x4.abs(x);
  const whole = f32x4.trunc(ax);
  const up = f32x4.ge(f32x4.sub(ax, whole), f32x4.splat(0.5));
  const rounded = f32x4.add(whole, v128.and(up, f32x4.splat(1.0)));
  return v128.or(rounded, v128.and(x, i32x4.splat(0x80000000)));
}

// @ts-ignore: decorator
@inline function maxLane(v: v128): f32 {
  const m = f32x4.max(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
}

// @ts-ignore: decorator
@inline function sumLanes(v: v128): i32 {
  const s = i32x4.add(v, v128.shuffle<i32>(v, v, 2, 3, 0, 1));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1);
}

/** Eight quants (two i32x4 of rounded floats) as one i16x8. */
// @ts-ignore: decorator
@inline function narrow8(lo: v128, hi: v128): v128 {
  return i16x8.narrow_i32x4_s(i32x4.trunc_sat_f32x4_s(lo), i32x4.trunc_sat_f32x4_s(hi));
}

/** One block of 32: q = roundf(x / d) with d = amax/127 (ggml's Q8_0 and Q8_1). */
function quantizeBlock32(x: usize, y: usize, order: i32): void {
  const x0 = v128.load(x, 0), x1 = v128.load(x, 16), x2 = v128.load(x, 32), x3 = v128.load(x, 48);
  const x4 = v128.load(x, 64), x5 = v128.load(x, 80), x6 = v128.load(x, 96), x7 = v128.load(x, 112);
  let amax = f32x4.max(f32x4.max(f32x4.abs(x0), f32x4.abs(x1)), f32x4.max(f32x4.abs(x2), f32x4.abs(x3)));
  amax = f32x4.max(amax, f32x4.max(f32x4.max(f32x4.abs(x4), f32x4.abs(x5)), f32x4.max(f32x4.abs(x6), f32x4.abs(x7))));
  const d: f32 = maxLane(amax) / 127.0;
  const id = f32x4.splat(d != 0 ? <f32>1.0 / d : <f32>0.0);
  const q0 = roundHalfAway(f32x4.mul(x0, id)), q1 = roundHalfAway(f32x4.mul(x1, id));
  const q2 = roundHalfAway(f32x4.mul(x2, id)), q3 = roundHalfAway(f32x4.mul(x3, id));
  const q4 = roundHalfAway(f32x4.mul(x4, id)), q5 = roundHalfAway(f32x4.mul(x5, id));
  const q6 = roundHalfAway(f32x4.mul(x6, id)), q7 = roundHalfAway(f32x4.mul(x7, id));
  const n0 = narrow8(q0, q1), n1 = narrow8(q2, q3), n2 = narrow8(q4, q5), n3 = narrow8(q6, q7);
  if (order == ORDER_NIBBLES || order == ORDER_NIBBLES_SCALED) {
    const scaled = order == ORDER_NIBBLES_SCALED;
    const v0 = v128.shuffle<i16>(n0, n1, 0, 2, 4, 6, 8, 10, 12, 14), v1 = v128.shuffle<i16>(n2, n3, 0, 2, 4, 6, 8, 10, 12, 14);
    const v3 = v128.shuffle<i16>(n2, n3, 1, 3, 5, 7, 9, 11, 13, 15);
    v128.store(y, scaled ? i16x8.shl(v0, 8) : v0, 0);
    v128.store(y, scaled ? i16x8.shl(v1, 4) : v1, 16);
    v128.store(y, v128.shuffle<i16>(n0, n1, 1, 3, 5, 7, 9, 11, 13, 15), 32);
    v128.store(y, scaled ? i16x8.shl(v3, 8) : v3, 48);
  } else {
    v128.store(y, n0, 0);
    v128.store(y, n1, 16);
    v128.store(y, n2, 32);
    v128.store(y, n3, 48);
  }
  const sum = sumLanes(i32x4.add(i32x4.extadd_pairwise_i16x8_s(i16x8.add(n0, n1)), i32x4.extadd_pairwise_i16x8_s(i16x8.add(n2, n3))));
  store<f32>(y, f16ToF32(f32ToF16(d)), ACT_D);
  store<i32>(y, sum, ACT_SUM);
  store<f32>(y, f16ToF32(f32ToF16(<f32>sum * d)), ACT_S);
}

/** Quantizes nRows rows of `cols` floats (cols a multiple of 32) into blocks of 32. */
export function quantizeRowsQ8(x: usize, nRows: i32, cols: i32, y: usize, order: i32): void {
  const nBlocks = nRows * (cols >> 5);
  for (let b = 0; b < nBlocks; b++) {
    quantizeBlock32(x + (<usize>b << 7), y + <usize>b * ACT_BLOCK_BYTES, order);
  }
}

/** One super-block of 256: q = nearest(-127/max · x), d = 1/scale (ggml's Q8_K). */
function quantizeBlock256(x: usize, y: usize): void {
  let amax: f32 = 0;
  let signedMax: f32 = 0;
  for (let j = 0; j < 256; j++) {
    const v = load<f32>(x + (<usize>j << 2));
    if (abs(v) > amax) {
      amax = abs(v);
      signedMax = v;
    }
  }
  const iscale: f32 = amax != 0 ? <f32>-127.0 / signedMax : 0;
  const scale = f32x4.splat(iscale);
  const limit = i32x4.splat(127);
  for (let g = 0; g < 16; g++) {
    const xg = x + (<usize>g << 6);
    const q0 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xg, 0), scale))), limit);
    const q1 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xg, 16), scale))), limit);
    const q2 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xg, 32), scale))), limit);
    const q3 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xg, 48), scale))), limit);
    const n0 = i16x8.narrow_i32x4_s(q0, q1);
    const n1 = i16x8.narrow_i32x4_s(q2, q3);
    const yg = y + (<usize>g << 5);
    v128.store(yg, v128.shuffle<i16>(n0, n1, 0, 8, 1, 9, 2, 10, 3, 11), 0);
    v128.store(yg, v128.shuffle<i16>(n0, n1, 4, 12, 5, 13, 6, 14, 7, 15), 16);
    store<i16>(y + ACT_K_BSUMS + (<usize>g << 1), <i16>sumLanes(i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3))));
  }
  store<f32>(y, amax != 0 ? <f32>1.0 / iscale : 0, ACT_K_D);
}

/** Quantizes nRows rows of `cols` floats (cols a multiple of 256) into super-blocks of 256. */
export function quantizeRowsQ8K(x: usize, nRows: i32, cols: i32, y: usize): void {
  const nBlocks = nRows * (cols >> 8);
  for (let b = 0; b < nBlocks; b++) {
    quantizeBlock256(x + (<usize>b << 10), y + <usize>b * ACT_K_BLOCK_BYTES);
  }
}

/** Rounds n floats to fp16 precision (ggml feeds F16 weights fp16 activations). */
export function roundToF16(x: usize, n: i32, y: usize): void {
  for (let i = 0; i < n; i++) {
    const at = <usize>i << 2;
    store<f32>(y + at, f16ToF32(f32ToF16(load<f32>(x + at))));
  }
}
