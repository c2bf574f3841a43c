// Rotary position embedding as ggml computes it (ggml_compute_forward_rope_f32 with ext_factor 0
// and attn_factor 1): per position, θ starts at p and is multiplied by base^(-2/nDims) in float
// for each pair; the angle is freqScale·θ.

/** Fills table with (cos, sin) pairs, nDims/2 per token, for the tokens' positions. */
export function ropeTable(positions: usize, nTokens: i32, nDims: i32, freqBase: f32, freqScale: f32, table: usize): void {
  const thetaScale = <f32>Math.pow(<f64>freqBase, <f64>(<f32>-2.0 / <f32>nDims));
  for (let t = 0; t < nTokens; t++) {
    let theta = <f32>load<i32>(positions + (<usize>t << 2));
    const row = table + (<usize>(t * nDims) << 2);
    for (let i = 0; i < nDims; i += 2) {
      const angle = <f64>(freqScale * theta);
      store<f32>(row + (<usize>i << 2), <f32>Math.cos(angle));
      store<f32>(row + (<usize>i << 2), <f32>Math.sin(angle), 4);
      theta *= thetaScale;
    }
  }
}

/**
 * Rotates x (nTokens × nHeads × headDim) in place with a table from ropeTable. NeoX pairs
 * element i with i + nDims/2; the original layout pairs 2i with 2i+1. Dimensions past nDims
 * are left as they are.
 */
export function rope(x: usize, nTokens: i32, nHeads: i32, headDim: i32, nDims: i32, neox: bool, table: usize): void {
  const half = nDims >> 1;
  for (let t = 0; t < nTokens; t++) {
    const cs = table + (<usize>(t * nDims) << 2);
    for (let h = 0; h < nHeads; h++) {
      const head = x + (<usize>((t * nHeads + h) * headDim) << 2);
      for (let i = 0; i < half; i++) {
        const c = load<f32>(cs + (<usize>i << 3));
        const s = load<f32>(cs + (<usize>i << 3), 4);
        const a = head + (<usize>(neox ? i : i << 1) << 2);
        const b = a + (neox ? <usize>half << 2 : 4);
        const x0 = load<f32>(a);
        const x1 = load<f32>(b);
        store<f32>(a, x0 * c - x1 * s);
        store<f32>(b, x0 * s + x1 * c);
      }
    }
  }
}
