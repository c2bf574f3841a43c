/** WGSL of SwiGLU in place: G = silu(G) · U over n_tokens rows of n values. */
import { FLAT_INDEX, FLAT_WORKGROUP, STEP_STRUCT } from "./common.ts";

export const SWIGLU_WGSL = /* wgsl */ `${STEP_STRUCT}${FLAT_INDEX}
struct SwigluParams { n: u32, unused0: u32, unused1: u32, unused2: u32 }
@group(0) @binding(0) var<storage, read_write> G: array<f32>;
@group(0) @binding(1) var<storage, read> U: array<f32>;
@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(3) var<uniform> p: SwigluParams;

@compute @workgroup_size(${FLAT_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = flat_index(gid, groups);
  if (i >= step.n_tokens * p.n) { return; }
  let g = G[i];
  G[i] = g / (1.0 + exp(-g)) * U[i];
}
`;
