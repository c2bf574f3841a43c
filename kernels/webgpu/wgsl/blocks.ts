/**
 * WGSL readers of GGUF weight rows, one per tensor type, reading the file's blocks as they are
 * (uploaded untouched into an `array<u32>` named W). Each defines
 *   fn load4(base: u32, k: u32) -> vec4<f32>
 * returning elements k…k+3 (k a multiple of 4) of the row whose first byte is at `base`, and
 * block types also load32 (elements k…k+31, k a multiple of 32, scales decoded once), with the
 * same float32 arithmetic as ggml's dequantize_row_* (kernels/quant/ is the CPU reference): the
 * products of an fp16 scale and a small integer are exact, so the values are bit for bit ggml's.
 */
import { GGMLType, typeName } from "../../gguf/types.ts";
import { BYTE_ACCESS } from "./block-access.ts";
import type { BlockReader } from "./block-reader.ts";
import { K_QUANT_HELPERS, K_READERS } from "./blocks-k.ts";
import { LEGACY_READERS } from "./blocks-legacy.ts";

const READERS: Partial<Record<GGMLType, BlockReader>> = { ...LEGACY_READERS, ...K_READERS };

// Float rows are 4-byte aligned (cols is a multiple of 4), so they read whole words.
const FLOAT_READERS: Partial<Record<GGMLType, string>> = {
  [GGMLType.F32]: `
  let o = (base >> 2u) + k;
  return vec4<f32>(bitcast<f32>(W[o]), bitcast<f32>(W[o + 1u]), bitcast<f32>(W[o + 2u]), bitcast<f32>(W[o + 3u]));`,
  [GGMLType.F16]: `
  let o = (base >> 2u) + (k >> 1u);
  let a = W[o]; let b = W[o + 1u];
  return vec4<f32>(half_to_f32(a & 0xffffu), half_to_f32(a >> 16u), half_to_f32(b & 0xffffu), half_to_f32(b >> 16u));`,
  [GGMLType.BF16]: `
  let o = (base >> 2u) + (k >> 1u);
  let a = W[o]; let b = W[o + 1u];
  return vec4<f32>(bitcast<f32>(a << 16u), bitcast<f32>(a & 0xffff0000u), bitcast<f32>(b << 16u), bitcast<f32>(b & 0xffff0000u));`,
};

/** Tensor types the WebGPU kernels read directly. */
export const WEBGPU_WEIGHT_TYPES: readonly GGMLType[] = [...Object.keys(FLOAT_READERS), ...Object.keys(READERS)].map(Number);

export function isWebGpuWeightType(type: GGMLType): boolean {
  return WEBGPU_WEIGHT_TYPES.includes(type);
}

/** Block types decode 32 elements at a time (load32); float rows only 4 (any multiple of 4 wide). */
export function hasLoad32(type: GGMLType): boolean {
  return READERS[type] !== undefined;
}

/** Helpers plus `load4` (and `load32` for block types) for weights of `type`; the kernel declares `W: array<u32>`. */
export function weightReaderWgsl(type: GGMLType): string {
  const float = FLOAT_READERS[type];
  if (float) return `${BYTE_ACCESS}\nfn load4(base: u32, k: u32) -> vec4<f32> {${float}\n}\n`;
  const reader = READERS[type];
  if (!reader) throw new RangeError(`the WebGPU backend cannot read ${typeName(type)} weights`);
  const locate = `
  let blk = base + (k / ${reader.blockSize}u) * ${reader.blockBytes}u;
  let e = k % ${reader.blockSize}u;`;
  return `${BYTE_ACCESS}${K_QUANT_HELPERS}
fn load4(base: u32, k: u32) -> vec4<f32> {${locate}${reader.load4}
}

fn load32(base: u32, k: u32) -> array<vec4<f32>, 8> {${locate}
  var v: array<vec4<f32>, 8>;${reader.load32}
  return v;
}
`;
}
