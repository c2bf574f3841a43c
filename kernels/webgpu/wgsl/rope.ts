/**
 * WGSL of the rotary embedding, in place on n_tokens × n_heads × head_dim values. The angles'
 * cosines and sines come from a table computed in float64 on the CPU (rope-table.ts), so large
 * positions lose no accuracy to the GPU's f32 sin/cos.
 */
import { FLAT_INDEX, FLAT_WORKGROUP, STEP_STRUCT } from "./common.ts";

export const ROPE_WGSL = /* wgsl */ `${STEP_STRUCT}${FLAT_INDEX}
struct RopeParams { n_heads: u32, head_dim: u32, half_dims: u32, neox: u32 }
@group(0) @binding(0) var<storage, read_write> X: array<f32>;
@group(0) @binding(1) var<storage, read> CS: array<vec2<f32>>;
@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(3) var<uniform> p: RopeParams;

@compute @workgroup_size(${FLAT_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = flat_index(gid, groups);
  if (i >= step.n_tokens * p.n_heads * p.half_dims) { return; }
  let d = i % p.half_dims;
  let head = i / p.half_dims;
  let t = head / p.n_heads;
  // NeoX pairs (d, d + n_dims/2); the original Llama layout pairs (2d, 2d + 1).
  let a = head * p.head_dim + select(2u * d, d, p.neox != 0u);
  let b = a + select(1u, p.half_dims, p.neox != 0u);
  let cs = CS[(step.pos0 + t) * p.half_dims + d];
  let x0 = X[a];
  let x1 = X[b];
  X[a] = x0 * cs.x - x1 * cs.y;
  X[b] = x0 * cs.y + x1 * cs.x;
}
`;
