// RMSNorm as ggml computes it (ggml_compute_forward_rms_norm_f32, then the multiply by the
// norm weight): Σx² in double, mean and scale in float, y = (x · scale) · w.

export function rmsNorm(x: usize, weight: usize, out: usize, nTokens: i32, n: i32, eps: f32): void {
  for (let t = 0; t < nTokens; t++) {
    const row = x + (<usize>(t * n) << 2);
    const dst = out + (<usize>(t * n) << 2);
    let sum0 = f64x2.splat(0), sum1 = f64x2.splat(0);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const v = v128.load(row + (<usize>i << 2));
      const sq = f32x4.mul(v, v);
      sum0 = f64x2.add(sum0, f64x2.promote_low_f32x4(sq));
      sum1 = f64x2.add(sum1, f64x2.promote_low_f32x4(v128.shuffle<f32>(sq, sq, 2, 3, 0, 1)));
    }
    const both = f64x2.add(sum0, sum1);
    let sum = f64x2.extract_lane(both, 0) + f64x2.extract_lane(both, 1);
    for (; i < n; i++) {
      const v = load<f32>(row + (<usize>i << 2));
      sum += <f64>(v * v);
    }
    const mean = <f32>(sum / <f64>n);
    const scale = f32x4.splat(<f32>1.0 / sqrt<f32>(mean + eps));
    i = 0;
    for (; i + 4 <= n; i += 4) {
      const at = <usize>i << 2;
      v128.store(dst + at, f32x4.mul(f32x4.mul(v128.load(row + at), scale), v128.load(weight + at)));
    }
    for (; i < n; i++) {
      const at = <usize>i << 2;
      store<f32>(dst + at, load<f32>(row + at) * f32x4.extract_lane(scale, 0) * load<f32>(weight + at));
    }
  }
}
