/** WGSL shared by the kernels: the per-step uniform and the index of a flat 1-D invocation. */

/** Written once per step: the batch size, the cache position of its first token, and (for the
 *  output head) the first row of the batch whose logits are wanted. */
export const STEP_STRUCT = /* wgsl */ `
struct Step { n_tokens: u32, pos0: u32, first_row: u32, unused: u32 }
`;

/** Threads per workgroup of the flat kernels (and the most any kernel here uses: compatibility
 *  mode guarantees only 128). */
export const FLAT_WORKGROUP = 64;

/** The flat index of an invocation of a kernel dispatched by `flatGroups` (2-D beyond 65535 groups). */
export const FLAT_INDEX = /* wgsl */ `
fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 { return gid.y * groups.x * ${FLAT_WORKGROUP}u + gid.x; }
`;
