// IEEE half precision <-> single precision, exactly as ggml converts (round to nearest even).

const F16_EXP_MASK: u32 = 0x7c00;
// A half's exponent/mantissa bits shifted into a float's place read as 2^-112 × the half's value.
const HALF_TO_FLOAT_SCALE: f32 = 5.192296858534828e33; // 2^112

/** Half (in the low 16 bits) to float; exact for every half, Inf and NaN included. */
// @ts-ignore: decorator
@inline export function f16ToF32(h: u32): f32 {
  const magnitudeBits = (h & 0x7fff) << 13;
  let magnitude = reinterpret<u32>(reinterpret<f32>(magnitudeBits) * HALF_TO_FLOAT_SCALE);
  magnitude = select<u32>(magnitudeBits | 0x7f800000, magnitude, (h & F16_EXP_MASK) == F16_EXP_MASK);
  return reinterpret<f32>(magnitude | ((h & 0x8000) << 16));
}

/**
 * Four halves held in the HIGH 16 bits of each i32 lane, to four floats. Finite halves only
 * (weight scales): an arithmetic shift moves sign, exponent and mantissa into a float's
 * places, leaving a float of 2^-112 × the half's value, subnormals included; one multiply fixes it.
 */
// @ts-ignore: decorator
@inline export function f16x4HighToF32x4(h: v128): v128 {
  const bits = v128.and(i32x4.shr_s(h, 3), i32x4.splat(0x8fffe000));
  return f32x4.mul(bits, f32x4.splat(HALF_TO_FLOAT_SCALE));
}

/** Float to half, rounding to nearest even; overflow gives Inf, NaN stays NaN. */
export function f32ToF16(x: f32): u32 {
  const bits = reinterpret<u32>(x);
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00; // NaN
  if (abs >= 0x477ff000) return sign | 0x7c00; // ≥ 65520 rounds to Inf
  if (abs < 0x38800000) {
    // Below the smallest normal half: the result is a multiple of 2^-24; scaling by 2^24 is exact.
    return sign | <u32>nearest<f32>(reinterpret<f32>(abs) * 16777216.0);
  }
  // Drop 13 mantissa bits rounding to nearest even; a carry correctly bumps the exponent.
  const rounded = abs + 0xfff + ((abs >>> 13) & 1);
  return sign | ((rounded - 0x38000000) >>> 13);
}
