// F32 and F16 rows · float activations, as ggml's scalar ggml_vec_dot_f32/f16 compute them in an
// x86-64 build without AVX: each product in float, the sum in double, rounded to float at the
// end. (For F16 weights ggml rounds the activations to fp16 first; roundToF16 does that.)
import { f16ToF32, f16x4HighToF32x4 } from "./half";

/** acc (f64x2 × 2) += the four float products of p, in double. */
// @ts-ignore: decorator
@inline function addProducts(acc: v128, p: v128): v128 {
  return f64x2.add(acc, f64x2.add(f64x2.promote_low_f32x4(p), f64x2.promote_low_f32x4(v128.shuffle<f32>(p, p, 2, 3, 0, 1))));
}

// @ts-ignore: decorator
@inline function sumF64(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

/** Four halves (at p) as four floats. */
// @ts-ignore: decorator
@inline export function loadHalves4(p: usize): v128 {
  return f16x4HighToF32x4(i32x4.shl(v128.load16x4_u(p), 16));
}

// @ts-ignore: decorator
@inline export function dotRowF32(w: usize, x: usize, n: i32): f32 {
  let acc0 = f64x2.splat(0), acc1 = acc0;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const at = <usize>i << 2;
    acc0 = addProducts(acc0, f32x4.mul(v128.load(w + at), v128.load(x + at)));
    acc1 = addProducts(acc1, f32x4.mul(v128.load(w + at, 16), v128.load(x + at, 16)));
  }
  let sum = sumF64(f64x2.add(acc0, acc1));
  for (; i < n; i++) sum += <f64>(load<f32>(w + (<usize>i << 2)) * load<f32>(x + (<usize>i << 2)));
  return <f32>sum;
}

// @ts-ignore: decorator
@inline export function dotRowF16(w: usize, x: usize, n: i32): f32 {
  let acc0 = f64x2.splat(0), acc1 = acc0;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = w + (<usize>i << 1);
    const at = x + (<usize>i << 2);
    acc0 = addProducts(acc0, f32x4.mul(loadHalves4(h), v128.load(at)));
    acc1 = addProducts(acc1, f32x4.mul(loadHalves4(h + 8), v128.load(at, 16)));
  }
  let sum = sumF64(f64x2.add(acc0, acc1));
  for (; i < n; i++) sum += <f64>(f16ToF32(load<u16>(w + (<usize>i << 1))) * load<f32>(x + (<usize>i << 2)));
  return <f32>sum;
}
