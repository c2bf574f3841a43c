/** F32, F16 and BF16 rows to float32. */
import * as half from "./half.ts";

// Local copies: under tsx and vitest an imported binding is a getter call on every use, too slow for
// per-element code (bundlers for Workers inline them anyway).
const { F16_TO_F32_BITS } = half;

// Byte and word views over the caller's output buffer, cached so that converting row after row of
// the same buffer allocates nothing. A one-entry cache: a matmul writes to one buffer at a time.
let viewedBuffer: ArrayBufferLike | undefined;
let bufferBytes: Uint8Array = new Uint8Array(0);
let bufferWords: Int32Array = new Int32Array(0);

function viewOutput(out: Float32Array): void {
  if (out.buffer === viewedBuffer && bufferBytes.byteLength === out.buffer.byteLength) return;
  viewedBuffer = out.buffer;
  bufferBytes = new Uint8Array(out.buffer);
  bufferWords = new Int32Array(out.buffer, 0, out.buffer.byteLength >>> 2);
}

/** Copies the raw little-endian floats: a memcpy, whatever the alignment of `src`. */
export function dequantizeF32(src: Uint8Array, out: Float32Array): void {
  viewOutput(out);
  bufferBytes.set(src, out.byteOffset);
}

/** The Int32 view of the whole output buffer, for the loops to hold in a local. */
function wordsOf(out: Float32Array): Int32Array {
  viewOutput(out);
  return bufferWords;
}

// F16 and BF16 write bit patterns rather than numbers, so that NaN payloads survive too.

export function dequantizeF16(src: Uint8Array, out: Float32Array): void {
  const words = wordsOf(out);
  const base = out.byteOffset >>> 2;
  for (let i = 0, o = 0; i < out.length; i++, o += 2) words[base + i] = F16_TO_F32_BITS[src[o]! | (src[o + 1]! << 8)]!;
}

/** bfloat16 is the top half of a float32. */
export function dequantizeBF16(src: Uint8Array, out: Float32Array): void {
  const words = wordsOf(out);
  const base = out.byteOffset >>> 2;
  for (let i = 0, o = 0; i < out.length; i++, o += 2) words[base + i] = (src[o]! << 16) | (src[o + 1]! << 24);
}
