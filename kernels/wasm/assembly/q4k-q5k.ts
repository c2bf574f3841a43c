// Q4_K and Q5_K rows · Q8_K activations, in the integer and float steps of
// ggml_vec_dot_q4_K_q8_K_generic / ggml_vec_dot_q5_K_q8_K_generic.
//
// A super-block: d, dmin (fp16), 12 bytes of 6-bit scales and mins for 8 sub-blocks of 32,
// [Q5_K: 32 bytes of fifth bits,] 128 bytes of nibbles. Each 64 elements share 32 nibble
// bytes: low nibbles are sub-block 2c, high nibbles sub-block 2c+1.
import { f16ToF32 } from "./half";
import {
  actD, addScaled, addTimesScale, bitAsByte, finishLanes, groupDotHigh, groupDotLow, sumI32,
} from "./kblocks";
import { ACT_K_BLOCK_BYTES, ACT_K_BSUMS } from "./layout";

export const Q4_K_BYTES: usize = 144;
export const Q5_K_BYTES: usize = 176;

/** Σ bsums[j] · min[j/2] over the 16 groups; mins: the 8 six-bit mins as bytes of two words. */
// @ts-ignore: decorator
@inline function minsDot(a: usize, mins03: u32, mins47: u32): i32 {
  const mins = i16x8.extend_low_i8x16_u(i32x4.replace_lane(i32x4.splat(mins03), 1, mins47));
  const low = v128.shuffle<i16>(mins, mins, 0, 0, 1, 1, 2, 2, 3, 3);
  const high = v128.shuffle<i16>(mins, mins, 4, 4, 5, 5, 6, 6, 7, 7);
  return sumI32(i32x4.add(
    i32x4.dot_i16x8_s(v128.load(a, ACT_K_BSUMS), low),
    i32x4.dot_i16x8_s(v128.load(a, ACT_K_BSUMS + 16), high),
  ));
}

/** Row (nBlocks super-blocks at w) · one token's activations at a. `high`: Q5_K. */
// @ts-ignore: decorator
@inline export function dotRowQ4KQ5K(w: usize, a: usize, nBlocks: i32, high: bool): f32 {
  let sumf: f32 = 0;
  let sumsLow = f32x4.splat(0);
  let sumsHigh = f32x4.splat(0);
  const nibbles = high ? 48 : 16;
  const lowNibble = i8x16.splat(0x0f);
  for (let b = 0; b < nBlocks; b++) {
    // The 12 scale bytes as three words; unpacking follows the format's bit layout.
    const s0 = load<u32>(w, 4), s1 = load<u32>(w, 8), s2 = load<u32>(w, 12);
    const scales03 = s0 & 0x3f3f3f3f;
    const mins03 = s1 & 0x3f3f3f3f;
    const scales47 = (s2 & 0x0f0f0f0f) | (((s0 >>> 6) & 0x03030303) << 4);
    const mins47 = ((s2 >>> 4) & 0x0f0f0f0f) | (((s1 >>> 6) & 0x03030303) << 4);

    let auxLow = i32x4.splat(0);
    let auxHigh = i32x4.splat(0);
    for (let c = 0; c < 4; c++) {
      const q = w + nibbles + (<usize>c << 5);
      const ag = a + (<usize>c << 7); // 64 activations of 2 bytes
      const q0 = v128.load(q), q1 = v128.load(q, 16);
      let lo0 = v128.and(q0, lowNibble), lo1 = v128.and(q1, lowNibble);
      let hi0 = v128.and(i16x8.shr_u(q0, 4), lowNibble), hi1 = v128.and(i16x8.shr_u(q1, 4), lowNibble);
      if (high) {
        const h0 = v128.load(w, 16), h1 = v128.load(w, 32);
        lo0 = v128.or(lo0, bitAsByte(h0, 2 * c, 16));
        lo1 = v128.or(lo1, bitAsByte(h1, 2 * c, 16));
        hi0 = v128.or(hi0, bitAsByte(h0, 2 * c + 1, 16));
        hi1 = v128.or(hi1, bitAsByte(h1, 2 * c + 1, 16));
      }
      const shift = <u32>(c & 1) << 4;
      const scaleLow = <i32>(((c < 2 ? scales03 : scales47) >>> shift) & 0xff);
      const scaleHigh = <i32>(((c < 2 ? scales03 : scales47) >>> (shift + 8)) & 0xff);
      // sub-block 2c: groups at ag, ag+32; sub-block 2c+1: ag+64, ag+96
      auxLow = addTimesScale(auxLow, i32x4.add(groupDotLow(lo0, ag), groupDotLow(lo1, ag + 32)), scaleLow);
      auxHigh = addTimesScale(auxHigh, i32x4.add(groupDotHigh(lo0, ag), groupDotHigh(lo1, ag + 32)), scaleLow);
      auxLow = addTimesScale(auxLow, i32x4.add(groupDotLow(hi0, ag + 64), groupDotLow(hi1, ag + 96)), scaleHigh);
      auxHigh = addTimesScale(auxHigh, i32x4.add(groupDotHigh(hi0, ag + 64), groupDotHigh(hi1, ag + 96)), scaleHigh);
    }
    const dy = actD(a);
    const d = f16ToF32(load<u16>(w)) * dy;
    sumsLow = addScaled(sumsLow, d, auxLow);
    sumsHigh = addScaled(sumsHigh, d, auxHigh);
    const dmin = f16ToF32(load<u16>(w, 2)) * dy;
    sumf -= dmin * <f32>minsDot(a, mins03, mins47);
    w += high ? Q5_K_BYTES : Q4_K_BYTES;
    a += ACT_K_BLOCK_BYTES;
  }
  return finishLanes(sumf, sumsLow, sumsHigh);
}
