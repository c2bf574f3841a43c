// Matrix × activations for ggml's 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0),
// dotted against Q8_0/Q8_1 activations. Per block the integer sum is exact and the float
// accumulation repeats ggml's scalar kernels operation for operation (ggml_vec_dot_*_generic),
// so every output equals llama.cpp's bit for bit ("llama.cpp" meaning its generic C kernels, the
// reference of our fixtures). Four rows run together: the activation vectors are loaded once for
// the four, and their block sums land in one vector's lanes.
import { f16x4HighToF32x4 } from "./half";
import { gatherU16High, storeSpaced, sumEach4, sumHalves4, tokensPerChunk } from "./lanes";
import { ACT_BLOCK_BYTES, ACT_D, ACT_S, ACT_SUM } from "./layout";
import { Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 } from "./types";

// @ts-ignore: decorator
@inline function blockBytes(kind: i32): usize {
  return kind == Q4_0 ? 18 : kind == Q4_1 ? 20 : kind == Q5_0 ? 22 : kind == Q5_1 ? 24 : 34;
}

/** Offset of the packed nibbles (or of the int8 quants for Q8_0) in a block. */
// @ts-ignore: decorator
@inline function quantsAt(kind: i32): usize {
  return kind == Q4_1 ? 4 : kind == Q5_0 ? 6 : kind == Q5_1 ? 8 : 2;
}

/** The fifth bit of Q5 quants, as 0 or 16 per i16 lane; `mul` moves bit k of the lane to bit 15. */
// @ts-ignore: decorator
@inline function highBits(bits16: v128, mul: v128): v128 {
  return v128.and(i16x8.shr_u(i16x8.mul(bits16, mul), 11), i16x8.splat(16));
}

/**
 * The c-th (0..3) i16x8 of a block's quants, in the lane order the activations were stored in.
 * Q4/Q5 nibbles are read as i16 lanes (bytes 2k, 2k+1): a mask and a shift pick elements 2k,
 * 2k+16, 2k+1 or 2k+17 of every lane, for c = 0, 1, 2, 3. Q4 leaves out the shift: its
 * activations come scaled (ORDER_NIBBLES_SCALED), so each vector's products carry the same 256.
 */
// @ts-ignore: decorator
@inline function quantVector(kind: i32, w: usize, c: i32): v128 {
  if (kind == Q8_0) {
    // constant offsets, so that they fold into the address
    return c == 0 ? v128.load8x8_s(w, 2) : c == 1 ? v128.load8x8_s(w, 10) : c == 2 ? v128.load8x8_s(w, 18) : v128.load8x8_s(w, 26);
  }
  const packed = v128.load(w + quantsAt(kind));
  if (kind == Q4_0 || kind == Q4_1) return c == 3 ? i16x8.shr_u(packed, 12) : v128.and(packed, i16x8.splat(c == 0 ? 0x000f : c == 1 ? 0x00f0 : 0x0f00));
  const nibble = i16x8.splat(0x0f);
  let q = c == 0 ? v128.and(packed, nibble) : c == 3 ? i16x8.shr_u(packed, 12) : v128.and(i16x8.shr_u(packed, c == 1 ? 4 : 8), nibble);
  if (kind == Q5_0 || kind == Q5_1) {
    const qh = load<u32>(w + (kind == Q5_0 ? 2 : 4));
    const half = i16x8.splat(<i16>(c == 1 || c == 3 ? qh >>> 16 : qh));
    const bits = c < 2
      ? v128(0, -128, 0, 32, 0, 8, 0, 2, -128, 0, 32, 0, 8, 0, 2, 0) // 2^15, 2^13, …, 2^1: the even bits to bit 15
      : v128(0, 64, 0, 16, 0, 4, 0, 1, 64, 0, 16, 0, 4, 0, 1, 0); // 2^14, 2^12, …, 2^0: the odd bits
    q = v128.or(q, highBits(half, bits));
  }
  return q;
}

/** Σ q·a of one block as four partial i32 sums; a0..a3: the activation block's vectors. */
// @ts-ignore: decorator
@inline function blockDot(kind: i32, w: usize, a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  let s = i32x4.dot_i16x8_s(quantVector(kind, w, 0), a0);
  s = i32x4.add(s, i32x4.dot_i16x8_s(quantVector(kind, w, 1), a1));
  s = i32x4.add(s, i32x4.dot_i16x8_s(quantVector(kind, w, 2), a2));
  return i32x4.add(s, i32x4.dot_i16x8_s(quantVector(kind, w, 3), a3));
}

/**
 * One block against two tokens' activation vectors (a*, b*), the weights unpacked once:
 * [Σ½ a, Σ½ a, Σ½ b, Σ½ b], two partial sums per token.
 */
// @ts-ignore: decorator
@inline function blockDotPair(kind: i32, w: usize, a0: v128, a1: v128, a2: v128, a3: v128, b0: v128, b1: v128, b2: v128, b3: v128): v128 {
  const q0 = quantVector(kind, w, 0), q1 = quantVector(kind, w, 1), q2 = quantVector(kind, w, 2), q3 = quantVector(kind, w, 3);
  let sa = i32x4.add(i32x4.dot_i16x8_s(q0, a0), i32x4.dot_i16x8_s(q1, a1));
  sa = i32x4.add(sa, i32x4.add(i32x4.dot_i16x8_s(q2, a2), i32x4.dot_i16x8_s(q3, a3)));
  let sb = i32x4.add(i32x4.dot_i16x8_s(q0, b0), i32x4.dot_i16x8_s(q1, b1));
  sb = i32x4.add(sb, i32x4.add(i32x4.dot_i16x8_s(q2, b2), i32x4.dot_i16x8_s(q3, b3)));
  return i32x4.add(v128.shuffle<i32>(sa, sb, 0, 2, 4, 6), v128.shuffle<i32>(sa, sb, 1, 3, 5, 7));
}

/** sumf += … for four rows at once, in the operation order of ggml's scalar kernel of `kind`. */
// @ts-ignore: decorator
@inline function accumulate(kind: i32, acc: v128, scaledSums: v128, dx: v128, mx: v128, a: usize): v128 {
  const dy = v128.load32_splat(a + ACT_D);
  // Q4 sums come times 256 (ORDER_NIBBLES_SCALED); the shift is exact
  const sums = kind == Q4_0 || kind == Q4_1 ? i32x4.shr_s(scaledSums, 8) : scaledSums;
  if (kind == Q4_0) {
    // sumi - 8·Σa is ggml's Σ (q-8)·a; then sumi*dx*dy
    const sumi = i32x4.sub(sums, i32x4.splat(load<i32>(a, ACT_SUM) << 3));
    return f32x4.add(acc, f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(sumi), dx), dy));
  }
  if (kind == Q5_0) {
    const sumi = i32x4.sub(sums, i32x4.splat(load<i32>(a, ACT_SUM) << 4));
    return f32x4.add(acc, f32x4.mul(f32x4.mul(dx, dy), f32x4.convert_i32x4_s(sumi)));
  }
  if (kind == Q8_0) {
    return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sums), f32x4.mul(dx, dy)));
  }
  // Q4_1, Q5_1: (dx·dy)·sumi + m·s
  const term = f32x4.add(f32x4.mul(f32x4.mul(dx, dy), f32x4.convert_i32x4_s(sums)), f32x4.mul(mx, v128.load32_splat(a + ACT_S)));
  return f32x4.add(acc, term);
}

/** The four rows' block scales d (and, for Q4_1/Q5_1, m) as floats. */
// @ts-ignore: decorator
@inline function blockScales(p0: usize, p1: usize, p2: usize, p3: usize, offset: usize): v128 {
  return f16x4HighToF32x4(gatherU16High(p0, p1, p2, p3, offset));
}

// @ts-ignore: decorator
@inline function hasMin(kind: i32): bool {
  return kind == Q4_1 || kind == Q5_1;
}

/**
 * The rows of a group: `n` rows from the n-ths of the range [rowStart, rowEnd), row i of each
 * (i, i + part, i + 2·part, …), as n sequential streams in different pages, which the CPU's
 * prefetchers follow at full DRAM bandwidth; adjacent rows (one interleaved stream) measured at
 * half of it (8 GB/s against 16-20 for plain loads on one core).
 */
// @ts-ignore: decorator
@inline function groupRows(rowStart: i32, rowEnd: i32, part: i32, i: i32, n: i32): i32 {
  return min(n, (rowEnd - rowStart - i + part - 1) / part);
}

/**
 * Pointer to row k of a group (rows r0 + k·part); past the range, row r0 again: the spare lanes
 * are computed but never stored.
 */
// @ts-ignore: decorator
@inline function rowAt(w: usize, rowBytes: i32, r0: i32, part: i32, k: i32, valid: i32): usize {
  return w + <usize>(k < valid ? r0 + k * part : r0) * rowBytes;
}

/**
 * out[t·outStride + r] = row r of W · activations of token t, for rows [rowStart, rowEnd) and
 * nTokens tokens. W: rows of rowBytes bytes; act: each token's cols/32 activation blocks;
 * scratch: MATMUL_SCRATCH_BYTES (128) of this thread's own.
 *
 * One token (decoding) takes matvecBlocks32. Batches go four rows (groupRows) at a time; each
 * group meets every token of a chunk while it sits in L1 (chunks keep the tokens' activations
 * within L2), two tokens at a time, each weight block unpacked once for both (a lone last token
 * is paired with itself). The block sums of the four rows pass through `scratch` because
 * TurboFan issues loads in program order but sinks arithmetic to its first use: storing each
 * row's sums at once keeps the arithmetic next to its loads instead of holding all sixteen
 * unpacked vectors in registers (measured: a third faster).
 */
// @ts-ignore: decorator
@inline function matmulBlocks32(
  kind: i32, w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, nTokens: i32, out: usize, outStride: i32, scratch: usize,
): void {
  if (nTokens == 1) {
    matvecBlocks32(kind, w, rowBytes, rowStart, rowEnd, cols, act, out, scratch);
    return;
  }
  const nBlocks = cols >> 5;
  const bytes = blockBytes(kind);
  const tokenActBytes = <usize>nBlocks * ACT_BLOCK_BYTES;
  const chunk = tokensPerChunk(tokenActBytes);
  const quarter = (rowEnd - rowStart + 3) >> 2;
  const laneStep = <usize>quarter << 2;
  for (let t0 = 0; t0 < nTokens; t0 += chunk) {
    const t1 = min(nTokens, t0 + chunk);
    for (let i = 0; i < quarter; i++) {
      const r0 = rowStart + i;
      const valid = groupRows(rowStart, rowEnd, quarter, i, 4);
      const row0 = rowAt(w, rowBytes, r0, quarter, 0, valid), row1 = rowAt(w, rowBytes, r0, quarter, 1, valid);
      const row2 = rowAt(w, rowBytes, r0, quarter, 2, valid), row3 = rowAt(w, rowBytes, r0, quarter, 3, valid);
      for (let t = t0; t < t1; t += 2) {
        const paired = t + 1 < t1;
        let a = act + <usize>t * tokenActBytes;
        const nextOffset = paired ? tokenActBytes : 0;
        let p0 = row0, p1 = row1, p2 = row2, p3 = row3;
        let accA = f32x4.splat(0), accB = accA;
        for (let b = 0; b < nBlocks; b++) {
          const next = a + nextOffset;
          // In locals: after the stores below, loads from memory would have to be repeated.
          const a0 = v128.load(a, 0), a1 = v128.load(a, 16), a2 = v128.load(a, 32), a3 = v128.load(a, 48);
          const b0 = v128.load(next, 0), b1 = v128.load(next, 16), b2 = v128.load(next, 32), b3 = v128.load(next, 48);
          v128.store(scratch, blockDotPair(kind, p0, a0, a1, a2, a3, b0, b1, b2, b3), 0);
          v128.store(scratch, blockDotPair(kind, p1, a0, a1, a2, a3, b0, b1, b2, b3), 16);
          v128.store(scratch, blockDotPair(kind, p2, a0, a1, a2, a3, b0, b1, b2, b3), 32);
          v128.store(scratch, blockDotPair(kind, p3, a0, a1, a2, a3, b0, b1, b2, b3), 48);
          const s0 = v128.load(scratch, 0), s1 = v128.load(scratch, 16), s2 = v128.load(scratch, 32), s3 = v128.load(scratch, 48);
          const dx = blockScales(p0, p1, p2, p3, 0);
          const mx = hasMin(kind) ? blockScales(p0, p1, p2, p3, 2) : dx;
          accA = accumulate(kind, accA, sumHalves4(s0, s1, s2, s3, 0), dx, mx, a);
          accB = accumulate(kind, accB, sumHalves4(s0, s1, s2, s3, 2), dx, mx, next);
          p0 += bytes;
          p1 += bytes;
          p2 += bytes;
          p3 += bytes;
          a += ACT_BLOCK_BYTES;
        }
        storeSpaced(out + ((<usize>t * outStride + r0) << 2), laneStep, accA, valid);
        if (paired) storeSpaced(out + ((<usize>(t + 1) * outStride + r0) << 2), laneStep, accB, valid);
      }
    }
  }
}

/**
 * out[r] = row r of W · one token's activations, rows [rowStart, rowEnd): eight rows
 * (groupRows) at a time, which share each block's activation loads and scales (decoding is
 * bound by these instructions once the weights stream at full bandwidth). The block sums of
 * the eight rows pass through `scratch`, as in matmulBlocks32.
 */
// @ts-ignore: decorator
@inline function matvecBlocks32(kind: i32, w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, out: usize, scratch: usize): void {
  const nBlocks = cols >> 5;
  const bytes = blockBytes(kind);
  const eighth = (rowEnd - rowStart + 7) >> 3;
  const laneStep = <usize>eighth << 2;
  for (let i = 0; i < eighth; i++) {
    const r0 = rowStart + i;
    const valid = groupRows(rowStart, rowEnd, eighth, i, 8);
    let p0 = rowAt(w, rowBytes, r0, eighth, 0, valid), p1 = rowAt(w, rowBytes, r0, eighth, 1, valid);
    let p2 = rowAt(w, rowBytes, r0, eighth, 2, valid), p3 = rowAt(w, rowBytes, r0, eighth, 3, valid);
    let p4 = rowAt(w, rowBytes, r0, eighth, 4, valid), p5 = rowAt(w, rowBytes, r0, eighth, 5, valid);
    let p6 = rowAt(w, rowBytes, r0, eighth, 6, valid), p7 = rowAt(w, rowBytes, r0, eighth, 7, valid);
    let a = act;
    let accLow = f32x4.splat(0), accHigh = accLow;
    for (let b = 0; b < nBlocks; b++) {
      const a0 = v128.load(a, 0), a1 = v128.load(a, 16), a2 = v128.load(a, 32), a3 = v128.load(a, 48);
      v128.store(scratch, blockDot(kind, p0, a0, a1, a2, a3), 0);
      v128.store(scratch, blockDot(kind, p1, a0, a1, a2, a3), 16);
      v128.store(scratch, blockDot(kind, p2, a0, a1, a2, a3), 32);
      v128.store(scratch, blockDot(kind, p3, a0, a1, a2, a3), 48);
      v128.store(scratch, blockDot(kind, p4, a0, a1, a2, a3), 64);
      v128.store(scratch, blockDot(kind, p5, a0, a1, a2, a3), 80);
      v128.store(scratch, blockDot(kind, p6, a0, a1, a2, a3), 96);
      v128.store(scratch, blockDot(kind, p7, a0, a1, a2, a3), 112);
      const sumsLow = sumEach4(v128.load(scratch, 0), v128.load(scratch, 16), v128.load(scratch, 32), v128.load(scratch, 48));
      const sumsHigh = sumEach4(v128.load(scratch, 64), v128.load(scratch, 80), v128.load(scratch, 96), v128.load(scratch, 112));
      const dxLow = blockScales(p0, p1, p2, p3, 0), dxHigh = blockScales(p4, p5, p6, p7, 0);
      accLow = accumulate(kind, accLow, sumsLow, dxLow, hasMin(kind) ? blockScales(p0, p1, p2, p3, 2) : dxLow, a);
      accHigh = accumulate(kind, accHigh, sumsHigh, dxHigh, hasMin(kind) ? blockScales(p4, p5, p6, p7, 2) : dxHigh, a);
      p0 += bytes;
      p1 += bytes;
      p2 += bytes;
      p3 += bytes;
      p4 += bytes;
      p5 += bytes;
      p6 += bytes;
      p7 += bytes;
      a += ACT_BLOCK_BYTES;
    }
    storeSpaced(out + (<usize>r0 << 2), laneStep, accLow, min(4, valid));
    if (valid > 4) storeSpaced(out + (<usize>(r0 + 4 * eighth) << 2), laneStep, accHigh, valid - 4);
  }
}

export function matmulQ4_0(w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, nTokens: i32, out: usize, outStride: i32, scratch: usize): void {
  matmulBlocks32(Q4_0, w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride, scratch);
}
export function matmulQ4_1(w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, nTokens: i32, out: usize, outStride: i32, scratch: usize): void {
  matmulBlocks32(Q4_1, w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride, scratch);
}
export function matmulQ5_0(w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, nTokens: i32, out: usize, outStride: i32, scratch: usize): void {
  matmulBlocks32(Q5_0, w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride, scratch);
}
export function matmulQ5_1(w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, nTokens: i32, out: usize, outStride: i32, scratch: usize): void {
  matmulBlocks32(Q5_1, w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride, scratch);
}
export function matmulQ8_0(w: usize, rowBytes: i32, rowStart: i32, rowEnd: i32, cols: i32, act: usize, nTokens: i32, out: usize, outStride: i32, scratch: usize): void {
  matmulBlocks32(Q8_0, w, rowBytes, rowStart, rowEnd, cols, act, nTokens, out, outStride, scratch);
}
