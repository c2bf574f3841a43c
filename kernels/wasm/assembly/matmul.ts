// The matmul entry points: which activation layout each weight type reads, and dispatch to its
// kernel.
import { matmulQ4_0, matmulQ4_1, matmulQ5_0, matmulQ5_1, matmulQ8_0 } from "./legacy";
import { ACT_BLOCK_BYTES, ACT_K_BLOCK_BYTES, ORDER_NATURAL, ORDER_NIBBLES, ORDER_NIBBLES_SCALED } from "./layout";
import { quantizeRowsQ8, quantizeRowsQ8K, roundToF16 } from "./quantize";
import { matmulF16, matmulF32, matmulQ2_K, matmulQ3_K, matmulQ4_K, matmulQ5_K, matmulQ6_K } from "./rows";
import { F16, F32, Q2_K, Q3_K, Q4_0, Q4_1, Q4_K, Q5_0, Q5_1, Q5_K, Q6_K, Q8_0 } from "./types";


// @ts-ignore: decorator
@inline function isKQuant(type: i32): bool {
  return type >= Q2_K && type <= Q6_K;
}

// @ts-ignore: decorator
@inline function isLegacy(type: i32): bool {
  return type == Q4_0 || type == Q4_1 || type == Q5_0 || type == Q5_1 || type == Q8_0;
}

/** Whether `matmul` has a kernel for weights of this type. */
export function supportsType(type: i32): bool {
  return type == F32 || type == F16 || isLegacy(type) || isKQuant(type);
}

/** Bytes of activations (per token of `cols` values) the kernel for `type` reads; 0 for F32, which reads x itself. */
export function activationBytes(type: i32, cols: i32): i32 {
  if (isKQuant(type)) return (cols >> 8) * ACT_K_BLOCK_BYTES;
  if (isLegacy(type)) return (cols >> 5) * ACT_BLOCK_BYTES;
  return type == F16 ? cols << 2 : 0;
}

/** Converts nTokens rows of x into the activations `type`'s kernel reads, at act; returns their address. */
export function prepareActivations(type: i32, x: usize, nTokens: i32, cols: i32, act: usize): usize {
  if (type == F32) return x;
  if (type == F16) roundToF16(x, nTokens * cols, act);
  else if (isKQuant(type)) quantizeRowsQ8K(x, nTokens, cols, act);
  else quantizeRowsQ8(x, nTokens, cols, act, type == Q8_0 ? ORDER_NATURAL : type == Q4_0 || type == Q4_1 ? ORDER_NIBBLES_SCALED : ORDER_NIBBLES);
  return act;
}

/**
 * out[t·outStride + r] = W[r] · x[t] for rows [rowStart, rowEnd) and nTokens tokens; W holds rows
 * of rowBytes bytes in their GGUF layout, act comes from prepareActivations; scratch: 128 bytes
 * (MATMUL_SCRATCH_BYTES) that no other thread uses at the same time.
 */
export function matmul(
  type: i32, w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, nTokens: i32, out: usize, outStride: i32, scratch: usize,
): void {
  switch (type) {
    case F32: matmulF32(w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride); break;
    case F16: matmulF16(w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride); break;
    case Q4_0: matmulQ4_0(w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride, scratch); break;
    case Q4_1: matmulQ4_1(w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride, scratch); break;
    case Q5_0: matmulQ5_0(w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride, scratch); break;
    case Q5_1: matmulQ5_1(w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride, scratch); break;
    case Q8_0: matmulQ8_0(w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride, scratch); break;
    case Q2_K: matmulQ2_K(w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride); break;
    case Q3_K: matmulQ3_K(w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride); break;
    case Q4_K: matmulQ4_K(w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride); break;
    case Q5_K: matmulQ5_K(w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride); break;
    case Q6_K: matmulQ6_K(w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride); break;
  }
}
