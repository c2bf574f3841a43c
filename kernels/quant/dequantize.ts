/**
 * Tensor blocks → float32, bit-exact with ggml's `to_float` (dequantize_row_*). Allocation-free,
 * so that a matmul can call it once per weight row; `src` may start at any byte offset.
 */
import { GGMLType, rowBytes, typeName } from "../gguf/types.ts";
import { dequantizeBF16, dequantizeF16, dequantizeF32 } from "./dequant-float.ts";
import { dequantizeQ2_K, dequantizeQ3_K, dequantizeQ4_K, dequantizeQ5_K, dequantizeQ6_K, dequantizeQ8_K } from "./dequant-k.ts";
import { dequantizeQ4_0, dequantizeQ4_1, dequantizeQ5_0, dequantizeQ5_1, dequantizeQ8_0 } from "./dequant-legacy.ts";

type Dequantizer = (src: Uint8Array, out: Float32Array) => void;

const DEQUANTIZERS: Partial<Record<GGMLType, Dequantizer>> = {
  [GGMLType.F32]: dequantizeF32,
  [GGMLType.F16]: dequantizeF16,
  [GGMLType.BF16]: dequantizeBF16,
  [GGMLType.Q4_0]: dequantizeQ4_0,
  [GGMLType.Q4_1]: dequantizeQ4_1,
  [GGMLType.Q5_0]: dequantizeQ5_0,
  [GGMLType.Q5_1]: dequantizeQ5_1,
  [GGMLType.Q8_0]: dequantizeQ8_0,
  [GGMLType.Q2_K]: dequantizeQ2_K,
  [GGMLType.Q3_K]: dequantizeQ3_K,
  [GGMLType.Q4_K]: dequantizeQ4_K,
  [GGMLType.Q5_K]: dequantizeQ5_K,
  [GGMLType.Q6_K]: dequantizeQ6_K,
  [GGMLType.Q8_K]: dequantizeQ8_K,
};

/** Types `dequantize` accepts. */
export const DEQUANTIZABLE_TYPES: readonly GGMLType[] = Object.keys(DEQUANTIZERS).map(Number);

/**
 * Decodes `out.length` elements of `type` from `src`, which must hold exactly their blocks.
 * Throws a RangeError for an unsupported type or a size mismatch.
 */
export function dequantize(type: GGMLType, src: Uint8Array, out: Float32Array): void {
  const decode = DEQUANTIZERS[type];
  if (!decode) throw new RangeError(`cannot dequantize tensor type ${typeName(type)}`);
  const expected = rowBytes(type, out.length);
  if (src.length !== expected) {
    throw new RangeError(`${typeName(type)}: ${out.length} elements take ${expected} bytes, got ${src.length}`);
  }
  decode(src, out);
}
