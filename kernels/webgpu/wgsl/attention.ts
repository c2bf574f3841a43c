/**
 * WGSL of the KV-cache: storing a step's K and V rows at their positions, and causal attention
 * of each query head over positions 0 … its own. The cache holds float32, or fp16 packed in
 * pairs (pack2x16float needs no shader-f16).
 *
 * Attention runs one workgroup per (head, token): 64 positions at a time, each thread scores one
 * position, then the block is folded into a running softmax (max, sum, weighted V), so no
 * buffer of n_positions scores is needed; each thread owns up to 4 of the head's dimensions.
 */
import type { KVType } from "../../model/backend.ts";
import { FLAT_INDEX, FLAT_WORKGROUP, STEP_STRUCT } from "./common.ts";

/** Largest head size the attention kernel takes (4 dimensions per thread). */
export const MAX_HEAD_DIM = 256;

export function kvStoreWgsl(type: KVType): string {
  const f16 = type === "f16";
  return /* wgsl */ `${STEP_STRUCT}${FLAT_INDEX}
struct KvParams { kv_dim: u32, unused0: u32, unused1: u32, unused2: u32 }
@group(0) @binding(0) var<storage, read> K: array<${f16 ? "vec2<f32>" : "f32"}>;
@group(0) @binding(1) var<storage, read> V: array<${f16 ? "vec2<f32>" : "f32"}>;
@group(0) @binding(2) var<storage, read_write> KC: array<${f16 ? "u32" : "f32"}>;
@group(0) @binding(3) var<storage, read_write> VC: array<${f16 ? "u32" : "f32"}>;
@group(0) @binding(4) var<uniform> step: Step;
@group(0) @binding(5) var<uniform> p: KvParams;

@compute @workgroup_size(${FLAT_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = flat_index(gid, groups);
  let per_token = p.kv_dim${f16 ? " / 2u" : ""};
  if (i >= step.n_tokens * per_token) { return; }
  let o = step.pos0 * per_token + i;
  KC[o] = ${f16 ? "pack2x16float(K[i])" : "K[i]"};
  VC[o] = ${f16 ? "pack2x16float(V[i])" : "V[i]"};
}
`;
}

export function attentionWgsl(type: KVType): string {
  const cacheAccess =
    type === "f16"
      ? /* wgsl */ `
@group(0) @binding(1) var<storage, read> KC: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> VC: array<u32>;
fn key4(i4: u32) -> vec4<f32> { let w = KC[i4]; return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
fn value(i: u32) -> f32 { return unpack2x16float(VC[i >> 1u])[i & 1u]; }
`
      : /* wgsl */ `
@group(0) @binding(1) var<storage, read> KC: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> VC: array<f32>;
fn key4(i4: u32) -> vec4<f32> { return KC[i4]; }
fn value(i: u32) -> f32 { return VC[i]; }
`;
  return /* wgsl */ `${STEP_STRUCT}
struct AttnParams { n_head: u32, group_size: u32, head_dim: u32, kv_dim: u32, scale: f32, unused0: u32, unused1: u32, unused2: u32 }
@group(0) @binding(0) var<storage, read> Q: array<f32>;
${cacheAccess}
@group(0) @binding(3) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(4) var<uniform> step: Step;
@group(0) @binding(5) var<uniform> p: AttnParams;
var<workgroup> q: array<vec4<f32>, ${MAX_HEAD_DIM / 4}>;
var<workgroup> probs: array<f32, 64>;

const MASKED = -3.0e38;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let head = wg.x;
  let t = wg.y;
  let n_pos = step.pos0 + t + 1u;
  let hd4 = p.head_dim / 4u;
  let q_off = (t * p.n_head + head) * p.head_dim;
  let kv_off = (head / p.group_size) * p.head_dim;
  for (var d = lid; d < hd4; d += 64u) {
    q[d] = vec4<f32>(Q[q_off + 4u * d], Q[q_off + 4u * d + 1u], Q[q_off + 4u * d + 2u], Q[q_off + 4u * d + 3u]);
  }
  workgroupBarrier();

  var run_max = MASKED;
  var run_sum = 0.0;
  var acc: array<f32, 4>;
  let n_blocks = (n_pos + 63u) / 64u;
  for (var b = 0u; b < n_blocks; b++) {
    let j = b * 64u + lid;
    var s = MASKED;
    if (j < n_pos) {
      let k4 = (j * p.kv_dim + kv_off) / 4u;
      var dot_qk = 0.0;
      for (var d = 0u; d < hd4; d++) { dot_qk += dot(q[d], key4(k4 + d)); }
      s = dot_qk * p.scale;
    }
    probs[lid] = s;
    workgroupBarrier();
    var new_max = run_max;
    for (var i = 0u; i < 64u; i++) { new_max = max(new_max, probs[i]); }
    workgroupBarrier();
    probs[lid] = select(0.0, exp(s - new_max), j < n_pos);
    workgroupBarrier();
    let rescale = exp(run_max - new_max);
    let count = min(64u, n_pos - b * 64u);
    var block_sum = 0.0;
    for (var i = 0u; i < count; i++) { block_sum += probs[i]; }
    run_sum = run_sum * rescale + block_sum;
    for (var c = 0u; c < 4u; c++) {
      let d = lid + 64u * c;
      if (d < p.head_dim) {
        var a = acc[c] * rescale;
        for (var i = 0u; i < count; i++) { a += probs[i] * value((b * 64u + i) * p.kv_dim + kv_off + d); }
        acc[c] = a;
      }
    }
    run_max = new_max;
    workgroupBarrier();
  }
  for (var c = 0u; c < 4u; c++) {
    let d = lid + 64u * c;
    if (d < p.head_dim) { OUT[q_off + d] = acc[c] / run_sum; }
  }
}
`;
}
