/**
 * WGSL helpers that read GGUF block bytes from the weight binding `W: array<u32>`. Blocks are
 * 2-byte aligned at best, so 4-byte reads may straddle two words.
 */
export const BYTE_ACCESS = /* wgsl */ `
fn w_byte(o: u32) -> u32 { return (W[o >> 2u] >> ((o & 3u) << 3u)) & 0xffu; }

fn w_u32(o: u32) -> u32 {
  let s = (o & 3u) << 3u;
  let lo = W[o >> 2u];
  if (s == 0u) { return lo; }
  return (lo >> s) | (W[(o >> 2u) + 1u] << (32u - s));
}

// fp16 → f32 by hand: unpack2x16float may flush the subnormal scales that K-quants often have.
fn half_to_f32(h: u32) -> f32 {
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  var mag: f32;
  if (e == 0u) {
    mag = f32(m) * 5.9604644775390625e-8;
  } else if (e == 31u) {
    mag = bitcast<f32>(0x7f800000u | (m << 13u));
  } else {
    mag = bitcast<f32>(((e + 112u) << 23u) | (m << 13u));
  }
  return select(mag, -mag, (h & 0x8000u) != 0u);
}

fn w_f16(o: u32) -> f32 { return half_to_f32((W[o >> 2u] >> ((o & 2u) << 3u)) & 0xffffu); }

// The four bytes of w, each shifted right by s and masked.
fn bits4(w: u32, s: u32, mask: u32) -> vec4<f32> {
  return vec4<f32>((vec4<u32>(w, w >> 8u, w >> 16u, w >> 24u) >> vec4<u32>(s)) & vec4<u32>(mask));
}

fn i8x4(w: u32) -> vec4<f32> {
  return vec4<f32>(vec4<i32>(bitcast<i32>(w << 24u), bitcast<i32>(w << 16u), bitcast<i32>(w << 8u), bitcast<i32>(w)) >> vec4<u32>(24u));
}

fn i8_at(o: u32) -> f32 { return f32(bitcast<i32>(w_byte(o) << 24u) >> 24u); }

// Q4_K/Q5_K: 6-bit scale and min of sub-block j, from the 12 bytes at s.
fn scale_min_k4(s: u32, j: u32) -> vec2<f32> {
  if (j < 4u) { return vec2<f32>(f32(w_byte(s + j) & 63u), f32(w_byte(s + j + 4u) & 63u)); }
  let sc = (w_byte(s + j + 4u) & 0xfu) | ((w_byte(s + j - 4u) >> 6u) << 4u);
  let mn = (w_byte(s + j + 4u) >> 4u) | ((w_byte(s + j) >> 6u) << 4u);
  return vec2<f32>(f32(sc), f32(mn));
}
// Bits s…s+3 of w (the fifth bits of four Q5 elements).
fn bit4(w: u32, s: u32) -> vec4<f32> {
  return vec4<f32>((vec4<u32>(w) >> (vec4<u32>(s) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u));
}
`;
