/**
 * WGSL of OUT = W · X for a weight matrix in GGUF blocks (one binding: a row range of the matrix)
 * and float32 activations X (n_tokens rows of `cols`). Two kernels share one bind group layout:
 *  - matvec, for a few tokens: a team of threads per weight row walks its blocks (32 elements
 *    at a time for block types), each weight element decoded once for up to MAX_T tokens;
 *  - matmat, for prompts: 32 rows × 32 tokens tiles staged through workgroup memory; with
 *    shader-f16 the weight tile is held in f16 (half the workgroup memory), while activations
 *    and all arithmetic stay f32: f16 activations or f16 products move the logits past the
 *    fixture rule (measured 1.6e-2·std), f16 weights alone keep them within 6.4e-3·std.
 * Both end in the same epilogue: optional bias, optional accumulation (the residual adds).
 */
import type { GGMLType } from "../../gguf/types.ts";
import { hasLoad32, weightReaderWgsl } from "./blocks.ts";
import { STEP_STRUCT } from "./common.ts";

/**
 * matvec: `team` threads share a row (16 on GPUs, so that neighbours read neighbouring blocks;
 * 1 on CPU-emulated adapters, where every extra invocation and barrier is costly).
 */
export type MatmulKernel = { kind: "matvec"; maxTokens: number; team: number } | { kind: "matmat"; f16: boolean };

/** Threads per matvec workgroup, and the tile size of matmat (for the dispatch sizes). */
export const MATVEC_WORKGROUP = 64;
export const MATMAT_TILE = 32;

const BINDINGS = /* wgsl */ `
struct MatParams { rows: u32, cols: u32, row_bytes: u32, row_offset: u32, out_stride: u32, accumulate: u32, has_bias: u32, unused: u32 }
@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<uniform> step: Step;
@group(0) @binding(5) var<uniform> p: MatParams;

// r: row within this binding's row range.
fn store(t: u32, r: u32, v: f32) {
  let row = p.row_offset + r;
  let i = t * p.out_stride + row;
  var y = v;
  if (p.has_bias != 0u) { y += BIAS[row]; }
  if (p.accumulate != 0u) { y += OUT[i]; }
  OUT[i] = y;
}
`;

// Lanes of a team take 32-element chunks (block types) or vec4s (float types) in turn.
const LOOP_32 = `
    for (var c = lane; c < n4 / 8u; c += TEAM) {
      let w = load32(base, c * 32u);
      for (var t = 0u; t < MAX_T; t++) {
        if (t < n_tokens) {
          let x = t * n4 + c * 8u;
          acc[t] += dot(w[0], X[x]) + dot(w[1], X[x + 1u]) + dot(w[2], X[x + 2u]) + dot(w[3], X[x + 3u])
            + dot(w[4], X[x + 4u]) + dot(w[5], X[x + 5u]) + dot(w[6], X[x + 6u]) + dot(w[7], X[x + 7u]);
        }
      }
    }`;
const LOOP_4 = `
    for (var k4 = lane; k4 < n4; k4 += TEAM) {
      let w = load4(base, k4 * 4u);
      for (var t = 0u; t < MAX_T; t++) {
        if (t < n_tokens) { acc[t] += dot(w, X[t * n4 + k4]); }
      }
    }`;

function matvec(maxTokens: number, team: number, chunked: boolean): string {
  // With one thread per row there is nothing to reduce: no workgroup memory, no barrier.
  const finish =
    team === 1
      ? `
  if (r < p.rows) {
    for (var t = 0u; t < n_tokens; t++) { store(t, r, acc[t]); }
  }`
      : `
  for (var t = 0u; t < MAX_T; t++) { partial[t * 64u + lid] = acc[t]; }
  workgroupBarrier();
  if (lane == 0u && r < p.rows) {
    for (var t = 0u; t < n_tokens; t++) {
      var s = 0.0;
      for (var i = 0u; i < TEAM; i++) { s += partial[t * 64u + lid + i]; }
      store(t, r, s);
    }
  }`;
  return /* wgsl */ `
const TEAM = ${team}u;
const MAX_T = ${maxTokens}u;
${team === 1 ? "" : `var<workgroup> partial: array<f32, ${MATVEC_WORKGROUP * maxTokens}>;`}

@compute @workgroup_size(${MATVEC_WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % TEAM;
  let r = (wg.y * groups.x + wg.x) * ${MATVEC_WORKGROUP / team}u + lid / TEAM;
  let n_tokens = step.n_tokens;
  let n4 = p.cols / 4u;
  var acc: array<f32, MAX_T>;
  if (r < p.rows) {
    let base = r * p.row_bytes;${chunked ? LOOP_32 : LOOP_4}
  }${finish}
}
`;
}

// Tiles hold 32 rows (or tokens) × 8 vec4s; rows are padded to 9 vec4s against bank conflicts.
// Thread (rq, tq) = (lid % 8, lid / 8) owns rows rq + 8i and tokens tq + 8j, i, j < 4.
// Staging one 32-wide slice of K: with load32 threads 0…31 decode a weight row each and
// threads 32…63 copy a token row each; otherwise every thread moves 4 vec4s of each.
const TILE_32 = `
    let line = lid % 32u;
    if (lid < 32u) {
      var w: array<vec4<f32>, 8>;
      if (r0 + line < p.rows) { w = load32((r0 + line) * p.row_bytes, kb * 4u); }
      for (var i = 0u; i < 8u; i++) { wt[line * STRIDE + i] = vec4<WS>(w[i]); }
    } else {
      for (var i = 0u; i < 8u; i++) {
        var x = vec4<f32>(0.0);
        if (t0 + line < n_tokens) { x = X[(t0 + line) * n4 + kb + i]; }
        xt[line * STRIDE + i] = x;
      }
    }`;
const TILE_4 = `
    for (var i = 0u; i < 4u; i++) {
      let e = lid + i * 64u;
      let line = e / 8u;
      let k4 = kb + e % 8u;
      var w = vec4<f32>(0.0);
      if (r0 + line < p.rows && k4 < n4) { w = load4((r0 + line) * p.row_bytes, k4 * 4u); }
      wt[line * STRIDE + e % 8u] = vec4<WS>(w);
      var x = vec4<f32>(0.0);
      if (t0 + line < n_tokens && k4 < n4) { x = X[(t0 + line) * n4 + k4]; }
      xt[line * STRIDE + e % 8u] = x;
    }`;

function matmat(f16: boolean, chunked: boolean): string {
  return /* wgsl */ `
alias WS = ${f16 ? "f16" : "f32"};
const STRIDE = 9u;
var<workgroup> wt: array<vec4<WS>, ${32 * 9}>;
var<workgroup> xt: array<vec4<f32>, ${32 * 9}>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r0 = wg.x * 32u;
  let t0 = wg.y * 32u;
  let n_tokens = step.n_tokens;
  let n4 = p.cols / 4u;
  let rq = lid % 8u;
  let tq = lid / 8u;
  var acc: array<vec4<f32>, 4>;
  for (var kb = 0u; kb < n4; kb += 8u) {
${chunked ? TILE_32 : TILE_4}
    workgroupBarrier();
    for (var k = 0u; k < 8u; k++) {
      let w0 = vec4<f32>(wt[rq * STRIDE + k]);
      let w1 = vec4<f32>(wt[(rq + 8u) * STRIDE + k]);
      let w2 = vec4<f32>(wt[(rq + 16u) * STRIDE + k]);
      let w3 = vec4<f32>(wt[(rq + 24u) * STRIDE + k]);
      for (var j = 0u; j < 4u; j++) {
        let x = xt[(tq + 8u * j) * STRIDE + k];
        acc[j] += vec4<f32>(dot(w0, x), dot(w1, x), dot(w2, x), dot(w3, x));
      }
    }
    workgroupBarrier();
  }
  for (var j = 0u; j < 4u; j++) {
    let t = t0 + tq + 8u * j;
    for (var i = 0u; i < 4u; i++) {
      let r = r0 + rq + 8u * i;
      if (r < p.rows && t < n_tokens) { store(t, r, acc[j][i]); }
    }
  }
}
`;
}

export function matmulWgsl(type: GGMLType, kernel: MatmulKernel): string {
  const f16 = kernel.kind === "matmat" && kernel.f16;
  const chunked = hasLoad32(type);
  const body = kernel.kind === "matvec" ? matvec(kernel.maxTokens, kernel.team, chunked) : matmat(kernel.f16, chunked);
  return `${f16 ? "enable f16;\n" : ""}${STEP_STRUCT}${BINDINGS}${weightReaderWgsl(type)}${body}`;
}
