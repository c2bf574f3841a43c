// Q6_K rows · Q8_K activations, in the steps of ggml_vec_dot_q6_K_q8_K_generic.
//
// A super-block: 128 bytes of low nibbles (ql), 64 bytes of 2-bit highs (qh), 16 signed 8-bit
// scales (one per group of 16), d (fp16). Each half of 128 elements uses 64 ql and 32 qh bytes:
// element l, l+32, l+64, l+96 (l < 32) take ql[l] low, ql[l+32] low, ql[l] high, ql[l+32] high
// nibbles and qh[l] bits 0-1, 2-3, 4-5, 6-7; the quant is that 6-bit value minus 32.
import { f16ToF32 } from "./half";
import { actD, addScaled, addTimesScale, finishLanes, groupDotHighOffset, groupDotLowOffset } from "./kblocks";
import { ACT_K_BLOCK_BYTES } from "./layout";

export const Q6_K_BYTES: usize = 210;

/** The signed scale of group `group` (0..15) of the super-block at w. */
// @ts-ignore: decorator
@inline function scaleOf(w: usize, group: usize): i32 {
  return <i32>load<i8>(w + 192 + group);
}

// @ts-ignore: decorator
@inline export function dotRowQ6K(w: usize, a: usize, nBlocks: i32): f32 {
  let sums0 = f32x4.splat(0);
  let sums1 = f32x4.splat(0);
  const lowNibble = i8x16.splat(0x0f);
  const twoBits = i8x16.splat(0x30);
  for (let b = 0; b < nBlocks; b++) {
    let aux0 = i32x4.splat(0);
    let aux1 = i32x4.splat(0);
    for (let half = 0; half < 2; half++) {
      for (let part = 0; part < 2; part++) {
        // elements 128·half + 16·part + {0, 32, 64, 96} + 0..15
        const at = <usize>(half << 6) + (<usize>part << 4);
        const ql0 = v128.load(w + at), ql1 = v128.load(w + at, 32);
        const qh = v128.load(w + 128 + (<usize>half << 5) + (<usize>part << 4));
        const q0 = v128.or(v128.and(ql0, lowNibble), v128.and(i16x8.shl(qh, 4), twoBits));
        const q1 = v128.or(v128.and(ql1, lowNibble), v128.and(i16x8.shl(qh, 2), twoBits));
        const q2 = v128.or(v128.and(i16x8.shr_u(ql0, 4), lowNibble), v128.and(qh, twoBits));
        const q3 = v128.or(v128.and(i16x8.shr_u(ql1, 4), lowNibble), v128.and(i16x8.shr_u(qh, 2), twoBits));
        const group = (<usize>half << 3) + part; // groups of q0..q3: +0, +2, +4, +6
        const ag = a + (group << 5);
        aux0 = addTimesScale(aux0, groupDotLowOffset(q0, ag, 32), scaleOf(w, group));
        aux1 = addTimesScale(aux1, groupDotHighOffset(q0, ag, 32), scaleOf(w, group));
        aux0 = addTimesScale(aux0, groupDotLowOffset(q1, ag + 64, 32), scaleOf(w, group + 2));
        aux1 = addTimesScale(aux1, groupDotHighOffset(q1, ag + 64, 32), scaleOf(w, group + 2));
        aux0 = addTimesScale(aux0, groupDotLowOffset(q2, ag + 128, 32), scaleOf(w, group + 4));
        aux1 = addTimesScale(aux1, groupDotHighOffset(q2, ag + 128, 32), scaleOf(w, group + 4));
        aux0 = addTimesScale(aux0, groupDotLowOffset(q3, ag + 192, 32), scaleOf(w, group + 6));
        aux1 = addTimesScale(aux1, groupDotHighOffset(q3, ag + 192, 32), scaleOf(w, group + 6));
      }
    }
    const d = f16ToF32(load<u16>(w, 208)) * actD(a);
    sums0 = addScaled(sums0, d, aux0);
    sums1 = addScaled(sums1, d, aux1);
    w += Q6_K_BYTES;
    a += ACT_K_BLOCK_BYTES;
  }
  return finishLanes(0, sums0, sums1);
}
