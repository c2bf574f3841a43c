/**
 * Quantizers of the 256-element K-quant super-blocks, byte-exact ports of ggml's
 * quantize_row_{q2,q3,q4,q5,q6,q8}_K_ref (ggml_quantize_chunk's path without an importance
 * matrix). Sub-block scales are found by the searches in k-search.ts, then quantized themselves
 * (to 4, 6 or 8 bits against an fp16 super-scale), and the quants recomputed from the rounded scales.
 * Each `block*` function quantizes one super-block `xb` (256 floats) into y[b..].
 */
import * as c32 from "./f32-math.ts";
import { f32Bits, putF16, roundToF16 } from "./half.ts";
import { minK4, packScalesK3, packScalesK4, scaleK3, scaleK4 } from "./k-scales.ts";
import { GROUP_MAX_EPS, makeQ3Quants, makeQkx2Quants, makeQxQuants, type Qkx2Search } from "./k-search.ts";

// Local copies: under tsx and vitest an imported binding is a getter call on every use, too slow for
// per-element code (bundlers for Workers inline them anyway).
const { clamp, f, nearestInt, signedAbsMax } = c32;

const QK_K = 256;

// Scratch shared by the quantizers (single-threaded, not re-entrant).
const L = new Uint8Array(QK_K);
const signedL = new Int8Array(QK_K);
const aux = new Uint8Array(32);
const weights = new Float32Array(32);
const scales = new Float32Array(16);
const mins = new Float32Array(16);
const levels = new Uint8Array(16);
const minLevels = new Uint8Array(8);

function maxOf(values: Float32Array, n: number): number {
  let max = 0;
  for (let j = 0; j < n; j++) if (values[j]! > max) max = values[j]!;
  return max;
}

/** Stores x as fp16 and returns the stored value: ggml recomputes the quants from the rounded scales. */
function storeF16(y: Uint8Array, at: number, x: number): number {
  putF16(y, at, x);
  return roundToF16(x);
}

/** Runs `block` over each 256-element super-block of x, `blockBytes` apart in y. */
function eachBlock(x: Float32Array, y: Uint8Array, blockBytes: number, block: (xb: Float32Array, y: Uint8Array, b: number) => void): void {
  for (let at = 0, b = 0; at < x.length; at += QK_K, b += blockBytes) block(x.subarray(at, at + QK_K), y, b);
}

/** Packs 2-bit quants (Q2_K/Q3_K order: in each 128, elements l, l+32, l+64, l+96 share byte l) at `at`. */
function pack2Bit(y: Uint8Array, at: number, q: ArrayLike<number>): void {
  for (let j = 0; j < QK_K; j += 128) {
    for (let l = 0; l < 32; l++) {
      y[at + j / 4 + l] = q[j + l]! | (q[j + l + 32]! << 2) | (q[j + l + 64]! << 4) | (q[j + l + 96]! << 6);
    }
  }
}

const Q2_SEARCH: Qkx2Search = { nmax: 3, rmin: -0.5, rdelta: f(0.1), nstep: 15, useMad: true };

/** Q2_K: 16 sub-blocks of 16 with 4-bit scales and mins against fp16 d and dmin; 2-bit quants. */
function blockQ2_K(xb: Float32Array, y: Uint8Array, b: number): void {
  for (let j = 0; j < 16; j++) {
    for (let l = 0; l < 16; l++) weights[l] = Math.abs(xb[16 * j + l]!);
    scales[j] = makeQkx2Quants(16, xb, 16 * j, weights, L, mins, j, aux, Q2_SEARCH);
  }
  const maxScale = maxOf(scales, 16);
  const maxMin = maxOf(mins, 16);
  const iscale = maxScale > 0 ? f(15 / maxScale) : 0;
  const iscaleMin = maxMin > 0 ? f(15 / maxMin) : 0;
  for (let j = 0; j < 16; j++) {
    const ls = maxScale > 0 ? nearestInt(f(iscale * scales[j]!)) : 0;
    const lm = maxMin > 0 ? nearestInt(f(iscaleMin * mins[j]!)) : 0;
    y[b + j] = (ls | (lm << 4)) & 0xff;
  }
  const d = storeF16(y, b + 80, maxScale > 0 ? f(maxScale / 15) : 0);
  const dmin = storeF16(y, b + 82, maxMin > 0 ? f(maxMin / 15) : 0);
  for (let j = 0; j < 16; j++) {
    const dl = f(d * (y[b + j]! & 0xf));
    if (dl === 0) continue; // C's `!d`: NaN (from an infinite d) does not skip
    const ml = f(dmin * (y[b + j]! >> 4));
    for (let i = 16 * j; i < 16 * j + 16; i++) L[i] = clamp(nearestInt(f(f(xb[i]! + ml) / dl)), 0, 3);
  }
  pack2Bit(y, b + 16, L);
}

/** Q3_K: 16 sub-blocks of 16 with signed 6-bit scales against fp16 d; 3-bit quants (2 bits + high bit). */
function blockQ3_K(xb: Float32Array, y: Uint8Array, b: number): void {
  for (let j = 0; j < 16; j++) scales[j] = makeQ3Quants(16, 4, xb, 16 * j, signedL);
  const maxScale = signedAbsMax(scales, 0, 16);
  y.fill(0, b, b + 110);
  const iscale = maxScale !== 0 ? f(-32 / maxScale) : 0;
  if (maxScale !== 0) {
    for (let j = 0; j < 16; j++) levels[j] = clamp((nearestInt(f(iscale * scales[j]!)) << 24) >> 24, -32, 31) + 32;
    packScalesK3(y, b + 96, levels);
  }
  const d = storeF16(y, b + 108, maxScale !== 0 ? f(1 / iscale) : 0);
  for (let j = 0; j < 16; j++) {
    const dl = f(d * scaleK3(y, b + 96, j));
    if (dl === 0) continue; // C's `!d`: NaN (from an infinite d) does not skip
    for (let i = 16 * j; i < 16 * j + 16; i++) signedL[i] = clamp(nearestInt(f(xb[i]! / dl)), -4, 3) + 4;
  }
  // High bits: element j's goes to bit j/32 of hmask byte j%32.
  for (let j = 0; j < QK_K; j++) {
    if (signedL[j]! > 3) {
      y[b + (j & 31)]! |= 1 << (j >> 5);
      signedL[j] = signedL[j]! - 4;
    }
  }
  pack2Bit(y, b + 32, signedL);
}

/**
 * The shared part of Q4_K and Q5_K: 8 sub-blocks of 32 searched with weights rms + |x|, 6-bit
 * scales and mins against fp16 d and dmin (bytes b..b+15), and the quants (0..nmax) left in L.
 */
function blockScaledMinK(xb: Float32Array, y: Uint8Array, b: number, search: Qkx2Search): void {
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 32 * j; l < 32 * j + 32; l++) sumX2 = f(sumX2 + f(xb[l]! * xb[l]!));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(xb[32 * j + l]!));
    scales[j] = makeQkx2Quants(32, xb, 32 * j, weights, L, mins, j, aux, search);
  }
  const maxScale = maxOf(scales, 8);
  const maxMin = maxOf(mins, 8);
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  for (let j = 0; j < 8; j++) {
    levels[j] = Math.min(63, nearestInt(f(invScale * scales[j]!)) & 0xff);
    minLevels[j] = Math.min(63, nearestInt(f(invMin * mins[j]!)) & 0xff);
  }
  y.fill(0, b + 4, b + 16);
  packScalesK4(y, b + 4, levels, minLevels);
  const d = storeF16(y, b, f(maxScale / 63));
  const dmin = storeF16(y, b + 2, f(maxMin / 63));
  for (let j = 0; j < 8; j++) {
    const dl = f(d * scaleK4(y, b + 4, j));
    if (dl === 0) continue; // C's `!d`: NaN (from an infinite d) does not skip
    const ml = f(dmin * minK4(y, b + 4, j));
    for (let i = 32 * j; i < 32 * j + 32; i++) L[i] = clamp(nearestInt(f(f(xb[i]! + ml) / dl)), 0, search.nmax);
  }
}

const Q4_SEARCH: Qkx2Search = { nmax: 15, rmin: -1, rdelta: f(0.1), nstep: 20, useMad: false };
const Q5_SEARCH: Qkx2Search = { nmax: 31, rmin: -0.5, rdelta: f(0.1), nstep: 15, useMad: false };

/** Q4_K: quants as nibbles, in each 64 elements l (low) and l+32 (high) share byte l. */
function blockQ4_K(xb: Float32Array, y: Uint8Array, b: number): void {
  blockScaledMinK(xb, y, b, Q4_SEARCH);
  for (let j = 0; j < QK_K; j += 64) {
    for (let l = 0; l < 32; l++) y[b + 16 + j / 2 + l] = L[j + l]! | (L[j + l + 32]! << 4);
  }
}

/** Q5_K: low nibbles as in Q4_K, fifth bits in 32 bytes (two bits per 64 elements). */
function blockQ5_K(xb: Float32Array, y: Uint8Array, b: number): void {
  blockScaledMinK(xb, y, b, Q5_SEARCH);
  y.fill(0, b + 16, b + 48);
  for (let n = 0, bit = 0; n < QK_K; n += 64, bit += 2) {
    for (let j = 0; j < 32; j++) {
      const l1 = L[n + j]!;
      const l2 = L[n + j + 32]!;
      y[b + 16 + j]! |= ((l1 >> 4) << bit) | ((l2 >> 4) << (bit + 1));
      y[b + 48 + n / 2 + j] = (l1 & 0xf) | ((l2 & 0xf) << 4);
    }
  }
}

/** Q6_K: 16 sub-blocks of 16 with signed 8-bit scales against fp16 d; 6-bit quants (nibble + 2 bits). */
function blockQ6_K(xb: Float32Array, y: Uint8Array, b: number): void {
  for (let j = 0; j < 16; j++) scales[j] = makeQxQuants(16, 32, xb, 16 * j, signedL);
  const maxScale = signedAbsMax(scales, 0, 16);
  y.fill(0, b, b + 210);
  if (Math.abs(maxScale) < GROUP_MAX_EPS) return; // an all-zero block
  const iscale = f(-128 / maxScale);
  const d = storeF16(y, b + 208, f(1 / iscale));
  for (let j = 0; j < 16; j++) {
    const sc = Math.min(127, nearestInt(f(iscale * scales[j]!)));
    y[b + 192 + j] = sc & 0xff;
    const dl = f(d * ((sc << 24) >> 24));
    if (dl === 0) continue; // C's `!d`: NaN (from an infinite d) does not skip
    for (let i = 16 * j; i < 16 * j + 16; i++) signedL[i] = clamp(nearestInt(f(xb[i]! / dl)), -32, 31) + 32;
  }
  for (let n = 0; n < QK_K; n += 128) {
    const ql = b + n / 2;
    const qh = b + 128 + n / 4;
    for (let l = 0; l < 32; l++) {
      const q1 = signedL[n + l]!, q2 = signedL[n + l + 32]!, q3 = signedL[n + l + 64]!, q4 = signedL[n + l + 96]!;
      y[ql + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
      y[ql + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
      y[qh + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
    }
  }
}

/** Q8_K (llama.cpp's activation format for K-quant dot products): d = max/−127 as float32, int8 quants, 16 group sums. */
function blockQ8_K(xb: Float32Array, y: Uint8Array, b: number): void {
  y.fill(0, b, b + 292);
  const max = signedAbsMax(xb, 0, QK_K);
  if (max === 0) return;
  const iscale = f(-127 / max);
  for (let g = 0; g < 16; g++) {
    let sum = 0;
    for (let j = 16 * g; j < 16 * g + 16; j++) {
      const q = Math.min(127, nearestInt(f(iscale * xb[j]!)));
      y[b + 4 + j] = q & 0xff;
      sum += q;
    }
    y[b + 260 + 2 * g] = sum & 0xff;
    y[b + 261 + 2 * g] = (sum >> 8) & 0xff;
  }
  const bits = f32Bits(f(1 / iscale));
  for (let k = 0; k < 4; k++) y[b + k] = (bits >>> (8 * k)) & 0xff;
}

export const quantizeQ2_K = (x: Float32Array, y: Uint8Array) => eachBlock(x, y, 84, blockQ2_K);
export const quantizeQ3_K = (x: Float32Array, y: Uint8Array) => eachBlock(x, y, 110, blockQ3_K);
export const quantizeQ4_K = (x: Float32Array, y: Uint8Array) => eachBlock(x, y, 144, blockQ4_K);
export const quantizeQ5_K = (x: Float32Array, y: Uint8Array) => eachBlock(x, y, 176, blockQ5_K);
export const quantizeQ6_K = (x: Float32Array, y: Uint8Array) => eachBlock(x, y, 210, blockQ6_K);
export const quantizeQ8_K = (x: Float32Array, y: Uint8Array) => eachBlock(x, y, 292, blockQ8_K);
