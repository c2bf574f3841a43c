// exp on four floats, with exactly the arithmetic of ggml's SSE2 ggml_v_expf (x86-64 builds
// without FMA): llama.cpp's softmax and SiLU use it, so matching it bit for bit keeps our
// activations identical to llama.cpp's (a 1-ulp difference can flip a later Q8 rounding).
// exp(x) = 2^n · (1 + p(b)), n = round(x·log2 e), b = x − n·ln 2 (ln 2 split in two parts), p a
// degree-5 polynomial; lanes with |n| > 126 are scaled in two steps, |n| > 192 saturate.

// @ts-ignore: decorator
@inline function splatBits(bits: u32): v128 {
  return i32x4.splat(bits);
}

// @ts-ignore: decorator
@inline function madd(a: v128, b: v128, c: v128): v128 {
  return f32x4.add(f32x4.mul(a, b), c);
}

// @ts-ignore: decorator
@inline export function expf4(x: v128): v128 {
  const round = splatBits(0x4b400000); // 1.5 · 2^23: adding it rounds to an integer
  const z = madd(x, splatBits(0x3fb8aa3b), round); // log2 e
  const n = f32x4.sub(z, round);
  const b = f32x4.sub(f32x4.sub(x, f32x4.mul(n, splatBits(0x3f317200))), f32x4.mul(n, splatBits(0x35bfbe8e)));
  const e = i32x4.shl(z, 23);
  const k = i32x4.add(e, splatBits(0x3f800000)); // 2^n as bits
  const absN = f32x4.abs(n);
  const u = f32x4.mul(b, b);
  const j = madd(
    madd(madd(splatBits(0x3c072010), b, splatBits(0x3d2b9f17)), u, madd(splatBits(0x3e2aaf33), b, splatBits(0x3efffedb))),
    u,
    f32x4.mul(splatBits(0x3f7ffff6), b),
  );
  const normal = madd(k, j, k);
  const large = f32x4.gt(absN, f32x4.splat(126));
  if (!v128.any_true(large)) return normal;
  const g = v128.and(f32x4.le(n, f32x4.splat(0)), splatBits(0x82000000));
  const s1 = i32x4.add(g, splatBits(0x7f000000));
  const s2 = i32x4.sub(e, g);
  const scaled = f32x4.mul(madd(s2, j, s2), s1);
  const saturated = f32x4.mul(s1, s1);
  const huge = f32x4.gt(absN, f32x4.splat(192));
  return v128.bitselect(saturated, v128.bitselect(scaled, normal, large), huge);
}
