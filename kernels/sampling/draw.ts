/**
 * The last link of the chain: softmax of the surviving candidates at temperature T, then one
 * draw by inverse CDF — the first candidate whose running weight exceeds u × total.
 */
import type { Candidates } from "./candidates.ts";
import type { Xoshiro128 } from "./rng.ts";

export interface TokenProbability {
  token: number;
  p: number;
}

/** Unnormalized softmax weights of the candidates into `weights` (float32, so a draw re-adds exactly these); returns their sum. */
function fillWeights(candidates: Candidates, temperature: number, weights: Float32Array): number {
  const max = candidates.maxLogit();
  const invT = 1 / temperature;
  let total = 0;
  for (let i = 0; i < candidates.n; i++) {
    const w = Math.fround(Math.exp((candidates.logitAt(i) - max) * invT));
    weights[i] = w;
    total += w;
  }
  return total;
}

/** `weights` is caller-owned scratch of at least `candidates.n` entries. */
export function drawToken(candidates: Candidates, temperature: number, rng: Xoshiro128, weights: Float32Array): number {
  const total = fillWeights(candidates, temperature, weights);
  const u = rng.nextDouble() * total;
  let running = 0;
  let last = 0;
  for (let i = 0; i < candidates.n; i++) {
    const w = weights[i]!;
    if (w === 0) continue;
    running += w;
    last = i;
    if (u < running) return candidates.ids[i]!;
  }
  return candidates.ids[last]!; // u rounded up to the total: the last candidate with weight
}

/** The distribution drawToken samples from, in candidate order. */
export function candidateProbabilities(candidates: Candidates, temperature: number, weights: Float32Array): TokenProbability[] {
  const total = fillWeights(candidates, temperature, weights);
  const out: TokenProbability[] = [];
  for (let i = 0; i < candidates.n; i++) out.push({ token: candidates.ids[i]!, p: weights[i]! / total });
  return out;
}
