/**
 * WGSL of RMSNorm, one workgroup per token: OUT[t] = X[first_row + t] / rms(X[...]) · WN, with
 * ggml's order of operations (scale = 1/sqrt(mean(x²) + eps); x · scale; then · weight).
 */
import { STEP_STRUCT } from "./common.ts";

export const RMS_NORM_WGSL = /* wgsl */ `${STEP_STRUCT}
struct NormParams { n: u32, eps: f32, unused0: u32, unused1: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(2) var<storage, read> WN: array<f32>;
@group(0) @binding(3) var<uniform> step: Step;
@group(0) @binding(4) var<uniform> p: NormParams;
var<workgroup> sums: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let src = (step.first_row + wg.x) * p.n;
  let dst = wg.x * p.n;
  var s = 0.0;
  for (var i = lid; i < p.n; i += 64u) { let v = X[src + i]; s += v * v; }
  sums[lid] = s;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { sums[lid] += sums[lid + stride]; }
    workgroupBarrier();
  }
  let scale = 1.0 / sqrt(sums[0] / f32(p.n) + p.eps);
  for (var i = lid; i < p.n; i += 64u) { OUT[dst + i] = (X[src + i] * scale) * WN[i]; }
}
`;
