// Causal attention over one sequence's KV-cache (F32 or F16 rows), computed like llama.cpp's
// CPU backend without flash attention: scores = K·q · scale; softmax exactly as ggml's (its vector
// exp; each group of four summed in float, the groups in double); out = Σ p·V. The two dot
// products run in float lanes where ggml sums in double: a last-bit difference, for a 3-4×
// faster kernel. With an F16 cache ggml rounds q and the probabilities to fp16 first; so do we.
import { expf4 } from "./expf";
import { loadHalves4 } from "./floats";
import { sumEach4F } from "./lanes";
import { f16ToF32, f32ToF16 } from "./half";

/** Copies n floats into a cache row, converting to fp16 when f16. */
export function storeKV(src: usize, dst: usize, n: i32, f16: bool): void {
  for (let i = 0; i < n; i++) {
    const v = load<f32>(src + (<usize>i << 2));
    if (f16) store<u16>(dst + (<usize>i << 1), <u16>f32ToF16(v));
    else store<f32>(dst + (<usize>i << 2), v);
  }
}

// @ts-ignore: decorator
@inline function roundToHalf(x: f32): f32 {
  return f16ToF32(f32ToF16(x));
}

/**
 * scores[0..n) ← exp(scores − max), returning Σ in ggml's order: lanes of a group of four added
 * as (v0+v1)+(v2+v3) in float, groups added in double. Positions past n count as exp(−∞) = 0,
 * like the masked cells of llama.cpp's padded KV range.
 */
function softmaxExp(scores: usize, n: i32, maxScore: f32): f64 {
  let sum: f64 = 0;
  const max4 = f32x4.splat(maxScore);
  for (let i = 0; i < n; i += 4) {
    const at = scores + (<usize>i << 2);
    let e = expf4(f32x4.sub(v128.load(at), max4));
    const valid = n - i;
    if (valid < 4) e = v128.and(e, i32x4.gt_s(i32x4(valid, valid, valid, valid), i32x4(0, 1, 2, 3)));
    v128.store(at, e);
    const pairs = f32x4.add(e, v128.shuffle<f32>(e, e, 1, 0, 3, 2));
    sum += <f64>(f32x4.extract_lane(pairs, 0) + f32x4.extract_lane(pairs, 2));
  }
  return sum;
}

/** Scratch bytes `attention` needs: scores (rounded up to whole groups of four), then headDim floats. */
export function attentionScratchBytes(nPositions: i32, headDim: i32): i32 {
  return ((nPositions + 4) << 2) + (headDim << 2);
}

/** q · row over headDim elements of an F32 or F16 row, in four float lanes summed (x0 + x2) + (x1 + x3). */
// @ts-ignore: decorator
@inline function dotHead(q: usize, row: usize, headDim: i32, f16: bool): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= headDim; i += 4) {
    const r = f16 ? loadHalves4(row + (<usize>i << 1)) : v128.load(row + (<usize>i << 2));
    acc = f32x4.add(acc, f32x4.mul(v128.load(q + (<usize>i << 2)), r));
  }
  acc = f32x4.add(acc, v128.shuffle<f32>(acc, acc, 2, 3, 0, 1));
  let sum = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1);
  for (; i < headDim; i++) sum += load<f32>(q + (<usize>i << 2)) * loadElement(row, i, f16);
  return sum;
}

// @ts-ignore: decorator
@inline function loadElement(row: usize, i: i32, f16: bool): f32 {
  return f16 ? f16ToF32(load<u16>(row + (<usize>i << 1))) : load<f32>(row + (<usize>i << 2));
}

/** One K row's four elements at d as floats. */
// @ts-ignore: decorator
@inline function loadK4(row: usize, d: i32, f16: bool): v128 {
  return f16 ? loadHalves4(row + (<usize>d << 1)) : v128.load(row + (<usize>d << 2));
}

/**
 * scores[j] = (q · K_j) · scale for j < nPos; returns the largest. Four positions at a time share
 * each load of q (when headDim is a multiple of 4; otherwise one at a time). Each dot product is
 * summed in the same order either way.
 */
// @ts-ignore: decorator
@inline function scoreAll(q: usize, k: usize, rowBytes: usize, nPos: i32, headDim: i32, f16: bool, scale: f32, scores: usize): f32 {
  let maxScore: f32 = -Infinity;
  let j = 0;
  if ((headDim & 3) == 0) {
    let max4 = f32x4.splat(-Infinity);
    for (; j + 4 <= nPos; j += 4) {
      const r0 = k + <usize>j * rowBytes, r1 = r0 + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes;
      let acc0 = f32x4.splat(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
      for (let d = 0; d < headDim; d += 4) {
        const qv = v128.load(q + (<usize>d << 2));
        acc0 = f32x4.add(acc0, f32x4.mul(qv, loadK4(r0, d, f16)));
        acc1 = f32x4.add(acc1, f32x4.mul(qv, loadK4(r1, d, f16)));
        acc2 = f32x4.add(acc2, f32x4.mul(qv, loadK4(r2, d, f16)));
        acc3 = f32x4.add(acc3, f32x4.mul(qv, loadK4(r3, d, f16)));
      }
      const s = f32x4.mul(sumEach4F(acc0, acc1, acc2, acc3), f32x4.splat(scale));
      v128.store(scores + (<usize>j << 2), s);
      max4 = f32x4.max(max4, s);
    }
    const m = f32x4.max(max4, v128.shuffle<f32>(max4, max4, 2, 3, 0, 1));
    maxScore = max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
  }
  for (; j < nPos; j++) {
    const s = dotHead(q, k + <usize>j * rowBytes, headDim, f16) * scale;
    store<f32>(scores + (<usize>j << 2), s);
    maxScore = max(maxScore, s);
  }
  return maxScore;
}

/**
 * o[0..headDim) = Σ_j p_j · V_j, sixteen dimensions at a time so that the sums stay in registers
 * while the positions stream by.
 */
// @ts-ignore: decorator
@inline function weightedSum(o: usize, probs: usize, v: usize, rowBytes: usize, nPos: i32, headDim: i32, f16: bool): void {
  const elementShift: usize = f16 ? 1 : 2;
  let i = 0;
  for (; i + 16 <= headDim; i += 16) {
    let acc0 = f32x4.splat(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    let row = v + (<usize>i << elementShift);
    for (let j = 0; j < nPos; j++) {
      const p = v128.load32_splat(probs + (<usize>j << 2));
      if (f16) {
        acc0 = f32x4.add(acc0, f32x4.mul(p, loadHalves4(row)));
        acc1 = f32x4.add(acc1, f32x4.mul(p, loadHalves4(row + 8)));
        acc2 = f32x4.add(acc2, f32x4.mul(p, loadHalves4(row + 16)));
        acc3 = f32x4.add(acc3, f32x4.mul(p, loadHalves4(row + 24)));
      } else {
        acc0 = f32x4.add(acc0, f32x4.mul(p, v128.load(row)));
        acc1 = f32x4.add(acc1, f32x4.mul(p, v128.load(row, 16)));
        acc2 = f32x4.add(acc2, f32x4.mul(p, v128.load(row, 32)));
        acc3 = f32x4.add(acc3, f32x4.mul(p, v128.load(row, 48)));
      }
      row += rowBytes;
    }
    const at = o + (<usize>i << 2);
    v128.store(at, acc0);
    v128.store(at, acc1, 16);
    v128.store(at, acc2, 32);
    v128.store(at, acc3, 48);
  }
  for (; i < headDim; i++) {
    let sum: f32 = 0;
    for (let j = 0; j < nPos; j++) sum += load<f32>(probs + (<usize>j << 2)) * loadElement(v + <usize>j * rowBytes, i, f16);
    store<f32>(o + (<usize>i << 2), sum);
  }
}

/**
 * For each token t (at position start + t) and head h: attention of q[t][h] over cache
 * positions 0 … start + t of K/V head h / (nHead / nHeadKv). k, v: the layer's cache rows
 * (kvDim elements per position). scratch: attentionScratchBytes(start + nTokens, headDim) bytes.
 */
export function attention(
  q: usize, out: usize, k: usize, v: usize, kvDim: i32, f16: bool, start: i32, nTokens: i32,
  nHead: i32, nHeadKv: i32, headDim: i32, scale: f32, scratch: usize,
): void {
  const group = nHead / nHeadKv;
  const elementBytes: usize = f16 ? 2 : 4;
  const rowBytes = <usize>kvDim * elementBytes;
  const scores = scratch;
  const qHalf = scratch + (<usize>(start + nTokens + 4) << 2);
  for (let t = 0; t < nTokens; t++) {
    const nPos = start + t + 1;
    for (let h = 0; h < nHead; h++) {
      let qh = q + (<usize>((t * nHead + h) * headDim) << 2);
      if (f16) {
        for (let i = 0; i < headDim; i++) store<f32>(qHalf + (<usize>i << 2), roundToHalf(load<f32>(qh + (<usize>i << 2))));
        qh = qHalf;
      }
      const headOffset = <usize>((h / group) * headDim) * elementBytes;
      const maxScore = scoreAll(qh, k + headOffset, rowBytes, nPos, headDim, f16, scale, scores);
      const inverse = <f32>(1.0 / softmaxExp(scores, nPos, maxScore));
      for (let j = 0; j < nPos; j++) {
        const p = load<f32>(scores + (<usize>j << 2)) * inverse;
        store<f32>(scores + (<usize>j << 2), f16 ? roundToHalf(p) : p);
      }
      weightedSum(out + (<usize>((t * nHead + h) * headDim) << 2), scores, v + headOffset, rowBytes, nPos, headDim, f16);
    }
  }
}
