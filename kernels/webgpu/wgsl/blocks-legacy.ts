/**
 * WGSL readers of the 32-element block types (layouts as in kernels/quant/dequant-legacy.ts):
 * element j < 16 is the low nibble of quant byte j, element j + 16 its high nibble.
 */
import { GGMLType } from "../../gguf/types.ts";
import type { BlockReader } from "./block-reader.ts";

export const LEGACY_READERS: Partial<Record<GGMLType, BlockReader>> = {
  // d (fp16), 16 bytes of nibbles; x = (q − 8)·d.
  [GGMLType.Q4_0]: {
    blockSize: 32,
    blockBytes: 18,
    load4: `
  let q = bits4(w_u32(blk + 2u + (e & 15u)), select(0u, 4u, e >= 16u), 0xfu);
  return (q - vec4<f32>(8.0)) * w_f16(blk);`,
    load32: `
  let d = w_f16(blk);
  for (var m = 0u; m < 4u; m++) {
    let q = w_u32(blk + 2u + 4u * m);
    v[m] = (bits4(q, 0u, 0xfu) - vec4<f32>(8.0)) * d;
    v[m + 4u] = (bits4(q, 4u, 0xfu) - vec4<f32>(8.0)) * d;
  }`,
  },
  // d, m (fp16), 16 bytes of nibbles; x = q·d + m.
  [GGMLType.Q4_1]: {
    blockSize: 32,
    blockBytes: 20,
    load4: `
  let q = bits4(w_u32(blk + 4u + (e & 15u)), select(0u, 4u, e >= 16u), 0xfu);
  return q * w_f16(blk) + vec4<f32>(w_f16(blk + 2u));`,
    load32: `
  let d = w_f16(blk);
  let mn = vec4<f32>(w_f16(blk + 2u));
  for (var m = 0u; m < 4u; m++) {
    let q = w_u32(blk + 4u + 4u * m);
    v[m] = bits4(q, 0u, 0xfu) * d + mn;
    v[m + 4u] = bits4(q, 4u, 0xfu) * d + mn;
  }`,
  },
  // d, 32 fifth bits (bit j for element j), 16 bytes of nibbles; x = (q − 16)·d.
  [GGMLType.Q5_0]: {
    blockSize: 32,
    blockBytes: 22,
    load4: `
  let q = bits4(w_u32(blk + 6u + (e & 15u)), select(0u, 4u, e >= 16u), 0xfu) + 16.0 * bit4(w_u32(blk + 2u), e);
  return (q - vec4<f32>(16.0)) * w_f16(blk);`,
    load32: `
  let d = w_f16(blk);
  let qh = w_u32(blk + 2u);
  for (var m = 0u; m < 4u; m++) {
    let q = w_u32(blk + 6u + 4u * m);
    v[m] = (bits4(q, 0u, 0xfu) + 16.0 * bit4(qh, 4u * m) - vec4<f32>(16.0)) * d;
    v[m + 4u] = (bits4(q, 4u, 0xfu) + 16.0 * bit4(qh, 16u + 4u * m) - vec4<f32>(16.0)) * d;
  }`,
  },
  // d, m, 32 fifth bits, 16 bytes of nibbles; x = q·d + m.
  [GGMLType.Q5_1]: {
    blockSize: 32,
    blockBytes: 24,
    load4: `
  let q = bits4(w_u32(blk + 8u + (e & 15u)), select(0u, 4u, e >= 16u), 0xfu) + 16.0 * bit4(w_u32(blk + 4u), e);
  return q * w_f16(blk) + vec4<f32>(w_f16(blk + 2u));`,
    load32: `
  let d = w_f16(blk);
  let mn = vec4<f32>(w_f16(blk + 2u));
  let qh = w_u32(blk + 4u);
  for (var m = 0u; m < 4u; m++) {
    let q = w_u32(blk + 8u + 4u * m);
    v[m] = (bits4(q, 0u, 0xfu) + 16.0 * bit4(qh, 4u * m)) * d + mn;
    v[m + 4u] = (bits4(q, 4u, 0xfu) + 16.0 * bit4(qh, 16u + 4u * m)) * d + mn;
  }`,
  },
  // d, 32 signed bytes; x = q·d.
  [GGMLType.Q8_0]: {
    blockSize: 32,
    blockBytes: 34,
    load4: `
  return i8x4(w_u32(blk + 2u + e)) * w_f16(blk);`,
    load32: `
  let d = w_f16(blk);
  for (var m = 0u; m < 8u; m++) { v[m] = i8x4(w_u32(blk + 2u + 4u * m)) * d; }`,
  },
};
