// Q2_K and Q3_K rows · Q8_K activations, in the steps of ggml_vec_dot_q2_K_q8_K_generic and
// ggml_vec_dot_q3_K_q8_K_generic. Both store 2-bit quants the same way: 64 bytes per
// super-block, element 128n + 32j + l (l < 32) in bits 2j..2j+1 of byte 32n + l.
import { f16ToF32 } from "./half";
import {
  actD, addScaled, addTimesScale, bitAsByte, finishLanes, groupDotHigh, groupDotHighOffset, groupDotLow,
  groupDotLowOffset, sumI32,
} from "./kblocks";
import { ACT_K_BLOCK_BYTES, ACT_K_BSUMS } from "./layout";

export const Q2_K_BYTES: usize = 84; // 16 scale bytes (scale | min << 4), 64 quant bytes, d, dmin
export const Q3_K_BYTES: usize = 110; // 32 hmask bytes, 64 quant bytes, 12 scale bytes, d

/** The 2-bit quants of group 8n + 2j + part (part: which 16 of the 32 bytes). */
// @ts-ignore: decorator
@inline function twoBits(packed: v128, j: i32): v128 {
  return v128.and(i16x8.shr_u(packed, <i32>(j << 1)), i8x16.splat(3));
}

// @ts-ignore: decorator
@inline export function dotRowQ2K(w: usize, a: usize, nBlocks: i32): f32 {
  let sumf: f32 = 0;
  for (let b = 0; b < nBlocks; b++) {
    // Σ bsums[g] · min[g]
    const mins = i8x16.shr_u(v128.load(w), 4);
    const minsLow = i16x8.extend_low_i8x16_u(mins);
    const minsHigh = i16x8.extend_high_i8x16_u(mins);
    const summs = sumI32(i32x4.add(
      i32x4.dot_i16x8_s(v128.load(a, ACT_K_BSUMS), minsLow),
      i32x4.dot_i16x8_s(v128.load(a, ACT_K_BSUMS + 16), minsHigh),
    ));
    let isum = i32x4.splat(0);
    for (let n = 0; n < 2; n++) {
      for (let part = 0; part < 2; part++) {
        const packed = v128.load(w + 16 + (<usize>n << 5) + (<usize>part << 4));
        for (let j = 0; j < 4; j++) {
          const group = (<usize>n << 3) + (<usize>j << 1) + part;
          const q = twoBits(packed, j);
          const ag = a + (group << 5);
          isum = addTimesScale(isum, i32x4.add(groupDotLow(q, ag), groupDotHigh(q, ag)), <i32>(load<u8>(w + group) & 0x0f));
        }
      }
    }
    const dy = actD(a);
    const dall = dy * f16ToF32(load<u16>(w, 80));
    const dmin = dy * f16ToF32(load<u16>(w, 82));
    sumf += dall * <f32>sumI32(isum) - dmin * <f32>summs;
    w += Q2_K_BYTES;
    a += ACT_K_BLOCK_BYTES;
  }
  return sumf;
}

/** Q3_K's six-bit scale of group g (0..15), unbiased: low 4 bits in bytes 0..7, high 2 in bytes 8..11. */
// @ts-ignore: decorator
@inline function scaleQ3K(w: usize, g: i32): i32 {
  const low = (<i32>load<u8>(w + 96 + (g & 7)) >> ((g >> 3) << 2)) & 0x0f;
  const high = (<i32>load<u8>(w + 104 + (g & 3)) >> ((g >> 2) << 1)) & 0x03;
  return (low | (high << 4)) - 32;
}

// @ts-ignore: decorator
@inline export function dotRowQ3K(w: usize, a: usize, nBlocks: i32): f32 {
  let sums0 = f32x4.splat(0);
  let sums1 = f32x4.splat(0);
  for (let b = 0; b < nBlocks; b++) {
    let aux0 = i32x4.splat(0);
    let aux1 = i32x4.splat(0);
    for (let n = 0; n < 2; n++) {
      for (let part = 0; part < 2; part++) {
        const packed = v128.load(w + 32 + (<usize>n << 5) + (<usize>part << 4));
        const hmask = v128.load(w + (<usize>part << 4));
        for (let j = 0; j < 4; j++) {
          const group = (<usize>n << 3) + (<usize>j << 1) + part;
          // 0..7 = low bits + 4·high bit; ggml's quant is that minus 4
          const q = v128.or(twoBits(packed, j), bitAsByte(hmask, (n << 2) + j, 4));
          const ag = a + (group << 5);
          const scale = scaleQ3K(w, <i32>group);
          aux0 = addTimesScale(aux0, groupDotLowOffset(q, ag, 4), scale);
          aux1 = addTimesScale(aux1, groupDotHighOffset(q, ag, 4), scale);
        }
      }
    }
    const d = f16ToF32(load<u16>(w, 108)) * actD(a);
    sums0 = addScaled(sums0, d, aux0);
    sums1 = addScaled(sums1, d, aux1);
    w += Q3_K_BYTES;
    a += ACT_K_BLOCK_BYTES;
  }
  return finishLanes(0, sums0, sums1);
}
