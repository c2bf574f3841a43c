/**
 * WGSL of the embedding lookup: row IDS[t] of the token matrix (GGUF blocks, one row range per
 * binding) decoded to float32, for every token of the step. A binding only writes the tokens
 * whose id falls in its row range.
 */
import type { GGMLType } from "../../gguf/types.ts";
import { weightReaderWgsl } from "./blocks.ts";
import { FLAT_INDEX, FLAT_WORKGROUP, STEP_STRUCT } from "./common.ts";

export function embedWgsl(type: GGMLType): string {
  return /* wgsl */ `${STEP_STRUCT}${FLAT_INDEX}
struct EmbedParams { rows: u32, cols: u32, row_bytes: u32, row_offset: u32 }
@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> IDS: array<u32>;
@group(0) @binding(2) var<storage, read_write> OUT: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> step: Step;
@group(0) @binding(4) var<uniform> p: EmbedParams;
${weightReaderWgsl(type)}
@compute @workgroup_size(${FLAT_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = flat_index(gid, groups);
  let n4 = p.cols / 4u;
  if (i >= step.n_tokens * n4) { return; }
  let id = IDS[i / n4];
  if (id < p.row_offset || id - p.row_offset >= p.rows) { return; }
  OUT[i] = load4((id - p.row_offset) * p.row_bytes, (i % n4) * 4u);
}
`;
}
