/**
 * WGSL readers of the 256-element K-quant super-blocks (layouts as in kernels/quant/dequant-k.ts).
 * Element e of a block falls in part n = e/128; within it Q2_K/Q3_K/Q6_K take a 2-bit shift (or
 * quarter) s = (e%128)/32 of byte l = e%32, and Q4_K/Q5_K take sub-block j = e/32.
 */
import { GGMLType } from "../../gguf/types.ts";
import type { BlockReader } from "./block-reader.ts";

// Q3_K: signed 6-bit scale `is` (0…15) from the 12 packed bytes at s, times d.
const Q3K_SCALE = /* wgsl */ `
fn scale_k3(s: u32, is: u32) -> f32 {
  var low = w_byte(s + (is & 7u));
  low = select(low >> 4u, low & 0xfu, is < 8u);
  let high = (w_byte(s + 8u + (is & 3u)) >> (2u * (is >> 2u))) & 3u;
  return f32(i32(low | (high << 4u)) - 32);
}
`;

export const K_QUANT_HELPERS = Q3K_SCALE;

/** Q4_K and Q5_K: nibbles (plus 16 × a fifth bit on Q5_K) times d·scale_j, minus dmin·min_j. */
function scaledNibbles(blockBytes: number, fifthBit: boolean): BlockReader {
  const nibbles = fifthBit ? 48 : 16;
  const q = (l: string) =>
    `bits4(w_u32(blk + ${nibbles}u + (j >> 1u) * 32u + ${l}), (j & 1u) * 4u, 0xfu)` + (fifthBit ? ` + 16.0 * bits4(w_u32(blk + 16u + ${l}), j, 1u)` : "");
  return {
    blockSize: 256,
    blockBytes,
    load4: `
  let j = e >> 5u; let l = e & 31u;
  let sm = scale_min_k4(blk + 4u, j);
  let q = ${q("l")};
  return (w_f16(blk) * sm.x) * q - vec4<f32>(w_f16(blk + 2u) * sm.y);`,
    load32: `
  let j = e >> 5u;
  let sm = scale_min_k4(blk + 4u, j);
  let dl = w_f16(blk) * sm.x;
  let ml = vec4<f32>(w_f16(blk + 2u) * sm.y);
  for (var m = 0u; m < 8u; m++) {
    let q = ${q("4u * m")};
    v[m] = dl * q - ml;
  }`,
  };
}

export const K_READERS: Partial<Record<GGMLType, BlockReader>> = {
  // 16 scale/min nibble pairs (one per 16 elements), 64 bytes of 2-bit quants, d, dmin; x = d·sc·q − dmin·m.
  [GGMLType.Q2_K]: {
    blockSize: 256,
    blockBytes: 84,
    load4: `
  let n = e >> 7u; let s = (e >> 5u) & 3u; let l = e & 31u;
  let sc = w_byte(blk + n * 8u + s * 2u + (l >> 4u));
  let dl = w_f16(blk + 80u) * f32(sc & 0xfu);
  let ml = w_f16(blk + 82u) * f32(sc >> 4u);
  return dl * bits4(w_u32(blk + 16u + n * 32u + l), 2u * s, 3u) - vec4<f32>(ml);`,
    load32: `
  let n = e >> 7u; let s = (e >> 5u) & 3u;
  let d = w_f16(blk + 80u); let dmin = w_f16(blk + 82u);
  for (var part = 0u; part < 2u; part++) {
    let sc = w_byte(blk + n * 8u + s * 2u + part);
    let dl = d * f32(sc & 0xfu);
    let ml = vec4<f32>(dmin * f32(sc >> 4u));
    for (var m = 4u * part; m < 4u * part + 4u; m++) {
      v[m] = dl * bits4(w_u32(blk + 16u + n * 32u + 4u * m), 2u * s, 3u) - ml;
    }
  }`,
  },
  // hmask (32 bytes), 2-bit quants (64), 12 bytes of 6-bit signed scales, d; x = d·sc·(q − 4·!high).
  [GGMLType.Q3_K]: {
    blockSize: 256,
    blockBytes: 110,
    load4: `
  let n = e >> 7u; let s = (e >> 5u) & 3u; let l = e & 31u;
  let dl = w_f16(blk + 108u) * scale_k3(blk + 96u, n * 8u + s * 2u + (l >> 4u));
  let q = bits4(w_u32(blk + 32u + n * 32u + l), 2u * s, 3u);
  let h = bits4(w_u32(blk + l), n * 4u + s, 1u);
  return dl * (q - vec4<f32>(4.0) + 4.0 * h);`,
    load32: `
  let n = e >> 7u; let s = (e >> 5u) & 3u;
  let d = w_f16(blk + 108u);
  for (var part = 0u; part < 2u; part++) {
    let dl = d * scale_k3(blk + 96u, n * 8u + s * 2u + part);
    for (var m = 4u * part; m < 4u * part + 4u; m++) {
      let q = bits4(w_u32(blk + 32u + n * 32u + 4u * m), 2u * s, 3u);
      let h = bits4(w_u32(blk + 4u * m), n * 4u + s, 1u);
      v[m] = dl * (q - vec4<f32>(4.0) + 4.0 * h);
    }
  }`,
  },
  // d, dmin, 12 bytes of scales/mins, 128 bytes of nibbles: sub-block j takes the low (even j)
  // or high (odd j) nibbles of bytes 32·(j/2)…
  [GGMLType.Q4_K]: scaledNibbles(144, false),
  // As Q4_K, plus 32 bytes of fifth bits at 16 (bit j of byte l) and the nibbles at 48.
  [GGMLType.Q5_K]: scaledNibbles(176, true),
  // ql (128 bytes), qh (64), 16 signed 8-bit scales (one per 16 elements), d; x = d·sc·(q − 32).
  // Quarter c of part n: low (c < 2) or high nibbles of ql, bits 2c… of qh.
  [GGMLType.Q6_K]: {
    blockSize: 256,
    blockBytes: 210,
    load4: `
  let n = e >> 7u; let c = (e >> 5u) & 3u; let l = e & 31u;
  let low = bits4(w_u32(blk + n * 64u + (c & 1u) * 32u + l), (c >> 1u) * 4u, 0xfu);
  let high = bits4(w_u32(blk + 128u + n * 32u + l), 2u * c, 3u);
  let dl = w_f16(blk + 208u) * i8_at(blk + 192u + n * 8u + (l >> 4u) + 2u * c);
  return dl * (low + 16.0 * high - vec4<f32>(32.0));`,
    load32: `
  let n = e >> 7u; let c = (e >> 5u) & 3u;
  let d = w_f16(blk + 208u);
  for (var part = 0u; part < 2u; part++) {
    let dl = d * i8_at(blk + 192u + n * 8u + part + 2u * c);
    for (var m = 4u * part; m < 4u * part + 4u; m++) {
      let low = bits4(w_u32(blk + n * 64u + (c & 1u) * 32u + 4u * m), (c >> 1u) * 4u, 0xfu);
      let high = bits4(w_u32(blk + 128u + n * 32u + 4u * m), 2u * c, 3u);
      v[m] = dl * (low + 16.0 * high - vec4<f32>(32.0));
    }
  }`,
  },
};
