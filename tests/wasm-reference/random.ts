/** Seeded random test data for the wasm kernel tests: activations and weight blocks. */
import { GGMLType, TYPE_LAYOUT, rowBytes } from "../../kernels/gguf/types.ts";
import { quantize } from "../../kernels/quant/quantize.ts";

/** mulberry32: a small seeded generator, uniform in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Roughly normal floats with the awkward cases activations have: outliers, zero blocks, exact ties. */
export function activations(random: () => number, n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (random() + random() + random() - 1.5) * 2;
  for (let i = 0; i < n; i += 97) x[i] = (random() < 0.5 ? -1 : 1) * 40 * random(); // outliers
  if (n >= 64) x.fill(0, 32, 64); // one all-zero block
  if (n >= 96) for (let i = 64; i < 96; i++) x[i] = ((i % 5) - 2) * 0.5 * 127 / 2; // values on rounding ties
  return x;
}

/** Byte offsets of the fp16 fields in one block of each format. */
const HALF_FIELDS: Partial<Record<GGMLType, number[]>> = {
  [GGMLType.Q4_0]: [0], [GGMLType.Q4_1]: [0, 2], [GGMLType.Q5_0]: [0], [GGMLType.Q5_1]: [0, 2], [GGMLType.Q8_0]: [0],
  [GGMLType.Q2_K]: [80, 82], [GGMLType.Q3_K]: [108], [GGMLType.Q4_K]: [0, 2], [GGMLType.Q5_K]: [0, 2], [GGMLType.Q6_K]: [208],
};

/** A random finite half: any sign, subnormals included, magnitude below 2^-2. */
function randomHalf(random: () => number): number {
  const exponent = Math.floor(random() * 14);
  return (random() < 0.5 ? 0x8000 : 0) | (exponent << 10) | Math.floor(random() * 1024);
}

/**
 * `rows` rows of `cols` weights of `type` in GGUF layout. "quantized": real floats through the
 * project's ggml-exact quantizer; "raw": random bytes, every bit pattern (but finite scales).
 */
export function weights(random: () => number, type: GGMLType, rows: number, cols: number, kind: "quantized" | "raw"): Uint8Array {
  if (kind === "quantized") {
    const x = new Float32Array(rows * cols).map(() => (random() - 0.5) * 0.2);
    return quantize(type, x);
  }
  const bytes = new Uint8Array(rows * rowBytes(type, cols)).map(() => Math.floor(random() * 256));
  const { blockBytes } = TYPE_LAYOUT[type]!;
  const fields = type === GGMLType.F16 ? [0] : type === GGMLType.F32 ? [] : HALF_FIELDS[type]!;
  for (let at = 0; at < bytes.length; at += blockBytes) {
    for (const field of fields) {
      const h = randomHalf(random);
      bytes[at + field] = h & 0xff;
      bytes[at + field + 1] = h >> 8;
    }
  }
  if (type === GGMLType.F32) {
    const f32 = new Float32Array(bytes.buffer);
    for (let i = 0; i < f32.length; i++) f32[i] = random() - 0.5;
  }
  return bytes;
}
