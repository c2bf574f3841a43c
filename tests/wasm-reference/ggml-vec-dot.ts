/**
 * A scalar model of what llama.cpp's CPU backend computes for one output of a matmul: the
 * activation row quantized by quantize_row_q8_0/q8_1/q8_K_ref, then the generic C dot product
 * (ggml_vec_dot_<type>_q8_<x>_generic) in float32, one rounding per C operation. Written from
 * the formats and ggml's arithmetic, independently of the wasm kernels it checks.
 */
import { GGMLType, rowBytes } from "../../kernels/gguf/types.ts";
import { f16ToF32, f32ToF16 } from "../../kernels/quant/half.ts";
import { minK4, scaleK3, scaleK4 } from "../../kernels/quant/k-scales.ts";
import { quantize } from "../../kernels/quant/quantize.ts";

const f = Math.fround;
const roundF16 = (x: number) => f16ToF32(f32ToF16(x));

interface Q8Block {
  d: number;
  s: number;
  qs: Int8Array;
}

interface Q8KBlock {
  d: number;
  qs: Int8Array;
  bsums: Int16Array;
}

/** ggml's Q8_0 (and, with s, Q8_1) blocks of a row, via the project's byte-exact Q8_0 quantizer. */
function quantizeQ8(x: Float32Array): Q8Block[] {
  const bytes = quantize(GGMLType.Q8_0, x);
  const blocks: Q8Block[] = [];
  for (let b = 0; b < x.length / 32; b++) {
    const at = 34 * b;
    const qs = new Int8Array(bytes.buffer, bytes.byteOffset + at + 2, 32);
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]!));
    const d = f(amax / 127);
    const sum = qs.reduce((a, q) => a + q, 0);
    blocks.push({ d: f16ToF32(bytes[at]! | (bytes[at + 1]! << 8)), s: roundF16(f(sum * d)), qs });
  }
  return blocks;
}

function quantizeQ8K(x: Float32Array): Q8KBlock[] {
  const bytes = quantize(GGMLType.Q8_K, x);
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  return Array.from({ length: x.length / 256 }, (_, b) => ({
    d: view.getFloat32(292 * b, true),
    qs: new Int8Array(bytes.buffer, bytes.byteOffset + 292 * b + 4, 256),
    bsums: Int16Array.from({ length: 16 }, (_, g) => view.getInt16(292 * b + 260 + 2 * g, true)),
  }));
}

const half = (w: Uint8Array, at: number) => f16ToF32(w[at]! | (w[at + 1]! << 8));

/** The integer quants of a 32-block as ggml's generic kernels use them (after any offset). */
function legacyQuants(type: GGMLType, w: Uint8Array, at: number): Int32Array {
  const q = new Int32Array(32);
  if (type === GGMLType.Q8_0) {
    for (let j = 0; j < 32; j++) q[j] = (w[at + 2 + j]! << 24) >> 24;
    return q;
  }
  const qsAt = at + ({ [GGMLType.Q4_0]: 2, [GGMLType.Q4_1]: 4, [GGMLType.Q5_0]: 6, [GGMLType.Q5_1]: 8 } as Record<number, number>)[type]!;
  const qhAt = type === GGMLType.Q5_0 ? at + 2 : at + 4;
  const five = type === GGMLType.Q5_0 || type === GGMLType.Q5_1;
  const qh = five ? (w[qhAt]! | (w[qhAt + 1]! << 8) | (w[qhAt + 2]! << 16) | (w[qhAt + 3]! << 24)) >>> 0 : 0;
  const offset = type === GGMLType.Q4_0 ? 8 : type === GGMLType.Q5_0 ? 16 : 0;
  for (let j = 0; j < 16; j++) {
    const byte = w[qsAt + j]!;
    q[j] = ((byte & 0x0f) | (five ? ((qh >>> j) & 1) << 4 : 0)) - offset;
    q[j + 16] = ((byte >> 4) | (five ? ((qh >>> (j + 16)) & 1) << 4 : 0)) - offset;
  }
  return q;
}

function dotLegacy(type: GGMLType, w: Uint8Array, x: Float32Array): number {
  const bytes = rowBytes(type, 32);
  let sumf = 0;
  quantizeQ8(x).forEach((y, b) => {
    const at = b * bytes;
    const q = legacyQuants(type, w, at);
    let sumi = 0;
    for (let j = 0; j < 32; j++) sumi += q[j]! * y.qs[j]!;
    const dx = half(w, at);
    let term: number;
    if (type === GGMLType.Q4_0) term = f(f(f(sumi) * dx) * y.d);
    else if (type === GGMLType.Q8_0) term = f(f(sumi) * f(dx * y.d));
    else if (type === GGMLType.Q5_0) term = f(f(dx * y.d) * f(sumi));
    else term = f(f(f(dx * y.d) * f(sumi)) + f(half(w, at + 2) * y.s)); // Q4_1, Q5_1
    sumf = f(sumf + term);
  });
  return sumf;
}

/** Per element of a super-block: ggml's int8 quant (aux8) and the index of its scale. */
interface KBlock {
  q: Int32Array;
  scale: (element: number) => number;
}

function kBlock(type: GGMLType, w: Uint8Array, at: number): KBlock {
  const q = new Int32Array(256);
  if (type === GGMLType.Q4_K || type === GGMLType.Q5_K) {
    const qs = at + (type === GGMLType.Q5_K ? 48 : 16);
    for (let e = 0; e < 256; e++) {
      const c = e >> 6, l = e & 31, high = (e & 63) >= 32;
      const byte = w[qs + 32 * c + l]!;
      q[e] = high ? byte >> 4 : byte & 0x0f;
      if (type === GGMLType.Q5_K) q[e] += ((w[at + 16 + l]! >> (2 * c + (high ? 1 : 0))) & 1) << 4;
    }
    return { q, scale: (e) => scaleK4(w, at + 4, e >> 5) };
  }
  if (type === GGMLType.Q6_K) {
    for (let e = 0; e < 256; e++) {
      const n = e >> 7, r = e & 127, l = r & 31, k = r >> 5; // k: which of l, l+32, l+64, l+96
      const ql = w[at + 64 * n + l + (k & 1 ? 32 : 0)]!;
      const low = k < 2 ? ql & 0x0f : ql >> 4;
      q[e] = (low | (((w[at + 128 + 32 * n + l]! >> (2 * k)) & 3) << 4)) - 32;
    }
    return { q, scale: (e) => (w[at + 192 + (e >> 4)]! << 24) >> 24 };
  }
  // Q2_K, Q3_K: element 128n + 32j + l in bits 2j of byte 32n + l
  const qs = at + (type === GGMLType.Q3_K ? 32 : 16);
  for (let e = 0; e < 256; e++) {
    const n = e >> 7, j = (e >> 5) & 3, l = e & 31;
    q[e] = (w[qs + 32 * n + l]! >> (2 * j)) & 3;
    if (type === GGMLType.Q3_K) q[e] -= (w[at + l]! >> (4 * n + j)) & 1 ? 0 : 4;
  }
  if (type === GGMLType.Q3_K) return { q, scale: (e) => scaleK3(w, at + 96, e >> 4) };
  return { q, scale: (e) => w[at + (e >> 4)]! & 0x0f };
}

function dotK(type: GGMLType, w: Uint8Array, x: Float32Array): number {
  const bytes = rowBytes(type, 256);
  let sumf = 0;
  const sums = new Array<number>(8).fill(0);
  quantizeQ8K(x).forEach((y, b) => {
    const at = b * bytes;
    const { q, scale } = kBlock(type, w, at);
    if (type === GGMLType.Q2_K) {
      let isum = 0;
      let summs = 0;
      for (let e = 0; e < 256; e++) isum += scale(e) * q[e]! * y.qs[e]!;
      for (let g = 0; g < 16; g++) summs += y.bsums[g]! * (w[at + g]! >> 4);
      const dall = f(y.d * half(w, at + 80));
      const dmin = f(y.d * half(w, at + 82));
      sumf = f(sumf + f(f(dall * f(isum)) - f(dmin * f(summs))));
      return;
    }
    // Eight integer lanes: lane l gathers the elements at positions ≡ l (mod 8).
    const aux = new Array<number>(8).fill(0);
    for (let e = 0; e < 256; e++) aux[e & 7] += scale(e) * q[e]! * y.qs[e]!;
    const dOffset = { [GGMLType.Q3_K]: 108, [GGMLType.Q6_K]: 208 } as Record<number, number>;
    const d = f(half(w, at + (dOffset[type] ?? 0)) * y.d);
    for (let l = 0; l < 8; l++) sums[l] = f(sums[l]! + f(d * f(aux[l]!)));
    if (type === GGMLType.Q4_K || type === GGMLType.Q5_K) {
      let sumi = 0;
      for (let g = 0; g < 16; g++) sumi += y.bsums[g]! * minK4(w, at + 4, g >> 1);
      sumf = f(sumf - f(f(half(w, at + 2) * y.d) * f(sumi)));
    }
  });
  for (let l = 0; l < 8; l++) sumf = f(sumf + sums[l]!);
  return sumf;
}

/**
 * llama.cpp's value of (row w) · x for a weight row of `type` (GGUF bytes) and float activations.
 * Quantized types: exactly. F16: x rounded to fp16 and the products summed in float64 (ggml's
 * summation order is build-dependent); F32: float64.
 */
export function ggmlVecDot(type: GGMLType, w: Uint8Array, x: Float32Array): number {
  if (type === GGMLType.F32 || type === GGMLType.F16) {
    const view = new DataView(w.buffer, w.byteOffset);
    let sum = 0;
    for (let i = 0; i < x.length; i++) {
      sum += type === GGMLType.F32 ? view.getFloat32(4 * i, true) * x[i]! : half(w, 2 * i) * roundF16(x[i]!);
    }
    return sum;
  }
  if (type >= GGMLType.Q2_K && type <= GGMLType.Q6_K) return dotK(type, w, x);
  return dotLegacy(type, w, x);
}
