/**
 * The arithmetic of our classifier graphs in plain TypeScript (float32 weights, float64
 * accumulation), used by training, by the ORT parity test and by the reference classifier.
 *
 *   heads_c = sigmoid(x·W[:, c] + b[c])                      p(c | harmful)
 *   without a gate:  score_c = heads_c
 *   with a gate:     g = sigmoid(x·Wg + bg)                  p(harmful)
 *                    score_c = g · heads_c / max(max_c' heads_c', 1e-30)
 */
import type { SparseFeatures } from "./features.ts";

export interface LinearModelWeights {
  /** row-major [D, C] */
  W: Float32Array;
  /** [C] */
  b: Float32Array;
  /** optional gate: [D] and [1] */
  Wg?: Float32Array;
  bg?: Float32Array;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Raw logits x·W + b for one sparse row, W row-major [D, C]. */
export function sparseLogits(x: SparseFeatures, W: Float32Array, b: Float32Array): Float64Array {
  const C = b.length;
  const z = Float64Array.from(b);
  for (let k = 0; k < x.indices.length; k++) {
    const base = x.indices[k]! * C;
    const v = x.values[k]!;
    for (let j = 0; j < C; j++) z[j]! += v * W[base + j]!;
  }
  return z;
}

export function linearScores(x: SparseFeatures, m: LinearModelWeights): Float64Array {
  const s = sparseLogits(x, m.W, m.b).map(sigmoid);
  if (!m.Wg || !m.bg) return s;
  const g = sigmoid(sparseLogits(x, m.Wg, m.bg)[0]!);
  let max = 0;
  for (const v of s) max = Math.max(max, v);
  max = Math.max(max, 1e-30);
  return s.map((v) => (g * v) / max);
}
