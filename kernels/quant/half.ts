/**
 * IEEE binary16 (fp16) and bfloat16 ↔ float32 conversions, bit-exact with ggml:
 * round to nearest even (subnormals included), overflow to ±inf, NaN to a quiet NaN.
 */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** float32 bit pattern of a number (after rounding it to float32). */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0]!;
}

/** The float32 whose bit pattern is `bits`. */
export function f32FromBits(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0]!;
}

/** The float32 bit pattern (as an int32) of an fp16. */
function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return sign | 0x7f800000 | (mant << 13); // inf / NaN, payload kept
  if (exp !== 0) return sign | ((exp + 112) << 23) | (mant << 13); // rebias 15 → 127
  // Zero or subnormal fp16 (mant·2^-24, a normal float32): let the FPU normalize it.
  return sign | f32Bits(mant * 2 ** -24);
}

/**
 * Every fp16 value's float32 bit pattern: one lookup per conversion (256 KiB, built once).
 * Signed words: V8 keeps int32 values unboxed, while uint32 values ≥ 2^31 slow loops down.
 */
export const F16_TO_F32_BITS: Int32Array = Int32Array.from({ length: 65536 }, (_, h) => f16BitsToF32Bits(h));
/** The same table read as floats. */
export const F16_TO_F32 = new Float32Array(F16_TO_F32_BITS.buffer);

export function f16ToF32(h: number): number {
  return F16_TO_F32[h & 0xffff]!;
}

const F16_OVERFLOW = 0x477ff000; // 65520: the tie between 65504 and 65536 rounds to even, i.e. to inf
const F16_MIN_NORMAL = 0x38800000; // 2^-14

/** Rounds to the nearest fp16 (ties to even) and returns its bit pattern. */
export function f32ToF16(x: number): number {
  const w = f32Bits(x);
  const sign = (w >>> 16) & 0x8000;
  const abs = w & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00; // NaN: ggml returns a quiet NaN without payload
  if (abs >= F16_OVERFLOW) return sign | 0x7c00;
  if (abs >= F16_MIN_NORMAL) {
    // Drop 13 mantissa bits with round-to-nearest-even; a carry correctly bumps the exponent.
    const rounded = abs + 0xfff + ((abs >>> 13) & 1);
    return sign | ((rounded - ((127 - 15) << 23)) >>> 13);
  }
  // Subnormal (or zero) fp16: the result is |x|·2^24 rounded to an integer, ties to even.
  // 1024 (the smallest normal) comes out right as it is exactly the normal encoding.
  const scaled = f32FromBits(abs) * 2 ** 24; // exact in float64
  const floor = Math.floor(scaled);
  const frac = scaled - floor;
  return sign | (frac > 0.5 || (frac === 0.5 && (floor & 1) === 1) ? floor + 1 : floor);
}

/** Rounds a number to fp16 and back: the value ggml stores. */
export function roundToF16(x: number): number {
  return F16_TO_F32[f32ToF16(x)]!;
}

export function bf16ToF32(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}

/** ggml's float32 → bfloat16: round to nearest even, NaN forced quiet. */
export function f32ToBf16(x: number): number {
  const w = f32Bits(x);
  if ((w & 0x7fffffff) > 0x7f800000) return ((w >>> 16) | 64) & 0xffff;
  return ((w + (0x7fff + ((w >>> 16) & 1))) >>> 16) & 0xffff;
}

/** The fp16 stored little-endian at `bytes[offset]`, as float32 (any byte offset). */
export function f16At(bytes: Uint8Array, offset: number): number {
  return F16_TO_F32[bytes[offset]! | (bytes[offset + 1]! << 8)]!;
}

/** Stores x as a little-endian fp16 at `bytes[offset]`. */
export function putF16(bytes: Uint8Array, offset: number, x: number): void {
  const h = f32ToF16(x);
  bytes[offset] = h & 0xff;
  bytes[offset + 1] = h >> 8;
}
