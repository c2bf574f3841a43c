/**
 * float32 → tensor blocks, byte-exact with ggml_quantize_chunk without an importance matrix
 * (quantize_row_*_ref), so that Petrel can write files llama.cpp would have written.
 */
import { GGMLType, rowBytes, typeName } from "../gguf/types.ts";
import { f32ToBf16, f32ToF16 } from "./half.ts";
import { quantizeQ2_K, quantizeQ3_K, quantizeQ4_K, quantizeQ5_K, quantizeQ6_K, quantizeQ8_K } from "./quant-k.ts";
import { quantizeQ4_0, quantizeQ4_1, quantizeQ5_0, quantizeQ5_1, quantizeQ8_0 } from "./quant-legacy.ts";

type Quantizer = (src: Float32Array, dst: Uint8Array) => void;

function quantizeF32(src: Float32Array, dst: Uint8Array): void {
  dst.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
}

function quantizeF16(src: Float32Array, dst: Uint8Array): void {
  for (let i = 0; i < src.length; i++) {
    const h = f32ToF16(src[i]!);
    dst[2 * i] = h & 0xff;
    dst[2 * i + 1] = h >> 8;
  }
}

function quantizeBF16(src: Float32Array, dst: Uint8Array): void {
  for (let i = 0; i < src.length; i++) {
    const h = f32ToBf16(src[i]!);
    dst[2 * i] = h & 0xff;
    dst[2 * i + 1] = h >> 8;
  }
}

const QUANTIZERS: Partial<Record<GGMLType, Quantizer>> = {
  [GGMLType.F32]: quantizeF32,
  [GGMLType.F16]: quantizeF16,
  [GGMLType.BF16]: quantizeBF16,
  [GGMLType.Q4_0]: quantizeQ4_0,
  [GGMLType.Q4_1]: quantizeQ4_1,
  [GGMLType.Q5_0]: quantizeQ5_0,
  [GGMLType.Q5_1]: quantizeQ5_1,
  [GGMLType.Q8_0]: quantizeQ8_0,
  [GGMLType.Q2_K]: quantizeQ2_K,
  [GGMLType.Q3_K]: quantizeQ3_K,
  [GGMLType.Q4_K]: quantizeQ4_K,
  [GGMLType.Q5_K]: quantizeQ5_K,
  [GGMLType.Q6_K]: quantizeQ6_K,
  [GGMLType.Q8_K]: quantizeQ8_K,
};

/** Types `quantize` accepts. */
export const QUANTIZABLE_TYPES: readonly GGMLType[] = Object.keys(QUANTIZERS).map(Number);

/**
 * Quantizes `src` (a whole number of `type`'s blocks; rows are independent, so any number of
 * rows at once) into a new byte array. Throws a RangeError for an unsupported type or length.
 */
export function quantize(type: GGMLType, src: Float32Array): Uint8Array {
  const encode = QUANTIZERS[type];
  if (!encode) throw new RangeError(`cannot quantize to tensor type ${typeName(type)}`);
  const dst = new Uint8Array(rowBytes(type, src.length));
  encode(src, dst);
  return dst;
}
