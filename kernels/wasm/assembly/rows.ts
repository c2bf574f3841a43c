// Matrix × activations for the formats whose kernels go one row at a time (K-quants, floats):
// rows stream through memory in order, and each row is dotted with every token of a chunk of
// the batch while it is in L1 (chunks keep the tokens' activations within L2).
import { dotRowF16, dotRowF32 } from "./floats";
import { dotRowQ2K, dotRowQ3K } from "./q2k-q3k";
import { dotRowQ4KQ5K } from "./q4k-q5k";
import { dotRowQ6K } from "./q6k";
import { ACT_K_BLOCK_BYTES } from "./layout";
import { tokensPerChunk } from "./lanes";
import { F16, F32, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K } from "./types";


// @ts-ignore: decorator
@inline function dotRow(kind: i32, w: usize, a: usize, cols: i32): f32 {
  if (kind == F32) return dotRowF32(w, a, cols);
  if (kind == F16) return dotRowF16(w, a, cols);
  if (kind == Q2_K) return dotRowQ2K(w, a, cols >> 8);
  if (kind == Q3_K) return dotRowQ3K(w, a, cols >> 8);
  if (kind == Q6_K) return dotRowQ6K(w, a, cols >> 8);
  return dotRowQ4KQ5K(w, a, cols >> 8, kind == Q5_K);
}

/** Bytes of one token's activations as the kernel of `kind` reads them. */
// @ts-ignore: decorator
@inline function activationBytes(kind: i32, cols: i32): usize {
  return kind == F32 || kind == F16 ? <usize>cols << 2 : <usize>(cols >> 8) * ACT_K_BLOCK_BYTES;
}

/** out[t·outStride + r] = row r · token t, rows [rowStart, rowEnd), cols elements per row. */
// @ts-ignore: decorator
@inline function matmulRows(
  kind: i32, w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, nTokens: i32, out: usize, outStride: i32,
): void {
  const tokenBytes = activationBytes(kind, cols);
  const chunk = tokensPerChunk(tokenBytes);
  for (let t0 = 0; t0 < nTokens; t0 += chunk) {
    const t1 = min(nTokens, t0 + chunk);
    for (let r = rowStart; r < rowEnd; r++) {
      const row = w + <usize>r * rowBytes;
      for (let t = t0; t < t1; t++) {
        store<f32>(out + ((<usize>t * outStride + r) << 2), dotRow(kind, row, act + <usize>t * tokenBytes, cols));
      }
    }
  }
}

export function matmulF32(w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, nTokens: i32, out: usize, outStride: i32): void {
  matmulRows(F32, w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride);
}
export function matmulF16(w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, nTokens: i32, out: usize, outStride: i32): void {
  matmulRows(F16, w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride);
}
export function matmulQ2_K(w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, nTokens: i32, out: usize, outStride: i32): void {
  matmulRows(Q2_K, w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride);
}
export function matmulQ3_K(w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, nTokens: i32, out: usize, outStride: i32): void {
  matmulRows(Q3_K, w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride);
}
export function matmulQ4_K(w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, nTokens: i32, out: usize, outStride: i32): void {
  matmulRows(Q4_K, w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride);
}
export function matmulQ5_K(w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, nTokens: i32, out: usize, outStride: i32): void {
  matmulRows(Q5_K, w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride);
}
export function matmulQ6_K(w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, nTokens: i32, out: usize, outStride: i32): void {
  matmulRows(Q6_K, w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride);
}
