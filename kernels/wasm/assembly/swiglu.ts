// SwiGLU as llama.cpp's x86 build computes it (ggml_vec_swiglu_f32): silu(g) · u with
// silu(g) = g / (1 + exp(−g)), four lanes at a time with ggml's vector exp, the tail with expf.
import { expf4 } from "./expf";

export function swiglu(gate: usize, up: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const at = <usize>i << 2;
    const g = v128.load(gate + at);
    const silu = f32x4.div(g, f32x4.add(f32x4.splat(1), expf4(f32x4.sub(f32x4.splat(0), g))));
    v128.store(out + at, f32x4.mul(silu, v128.load(up + at)));
  }
  for (; i < n; i++) {
    const at = <usize>i << 2;
    const g = load<f32>(gate + at);
    store<f32>(out + at, (g / (<f32>1.0 + Mathf.exp(-g))) * load<f32>(up + at));
  }
}
