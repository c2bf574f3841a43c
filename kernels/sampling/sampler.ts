/**
 * The sampler chain, in llama.cpp's default order (common/sampling.cpp):
 *
 *   logit bias → penalties (repetition, frequency, presence over the last N tokens)
 *   → top-k → top-p → min-p → temperature → draw
 *
 * so top-p and min-p judge the temperature-1 distribution and temperature only reshapes what
 * survives. Temperature 0 is greedy: the argmax of the biased, penalized logits (first index on
 * ties). One Sampler serves one sequence: its generator advances with every draw, and its
 * scratch (12 bytes per vocabulary entry) is reused across steps.
 *
 * Same seed and logits ⇒ same tokens: the generator is integer-only and the float work runs in
 * a fixed order (V8's Math.exp is a port of fdlibm, so Node and Workers agree bit for bit).
 */
import { Candidates } from "./candidates.ts";
import { candidateProbabilities, drawToken, type TokenProbability } from "./draw.ts";
import { resolveParams, type ResolvedParams, type SamplingParams } from "./params.ts";
import { applyBias, applyPenalties } from "./penalties.ts";
import { randomSeed, Xoshiro128 } from "./rng.ts";

export class Sampler {
  /** The seed in use (the given one, or the random one drawn when none was given). */
  readonly seed: number;
  private readonly params: ResolvedParams;
  private readonly rng: Xoshiro128;
  private readonly adjusted: Float32Array;
  private readonly candidates: Candidates;
  private readonly weights: Float32Array;
  private readonly counts = new Map<number, number>();

  constructor(params: SamplingParams, readonly nVocab: number) {
    if (!Number.isInteger(nVocab) || nVocab <= 0) throw new RangeError(`nVocab must be a positive integer, got ${nVocab}`);
    this.params = resolveParams(params, nVocab);
    this.seed = this.params.seed ?? randomSeed();
    this.rng = new Xoshiro128(this.seed);
    this.adjusted = new Float32Array(nVocab);
    this.candidates = new Candidates(nVocab);
    this.weights = new Float32Array(nVocab);
  }

  /** Picks the next token from `logits` (left untouched); `history` is every token so far, prompt included. */
  sample(logits: Float32Array, history: ArrayLike<number>): number {
    const p = this.params;
    if (p.temperature === 0) return argmax(this.adjust(logits, history));
    return drawToken(this.filter(logits, history), p.temperature, this.rng, this.weights);
  }

  /**
   * The distribution `sample` would draw from (tokens that survive the filters and their
   * probabilities after temperature), without drawing. For inspection and logprobs: it allocates.
   */
  distribution(logits: Float32Array, history: ArrayLike<number>): TokenProbability[] {
    const p = this.params;
    if (p.temperature === 0) return [{ token: argmax(this.adjust(logits, history)), p: 1 }];
    return candidateProbabilities(this.filter(logits, history), p.temperature, this.weights);
  }

  /** Bias and penalties, applied to a copy of the logits. */
  private adjust(logits: Float32Array, history: ArrayLike<number>): Float32Array {
    if (logits.length !== this.nVocab) throw new RangeError(`expected ${this.nVocab} logits, got ${logits.length}`);
    this.adjusted.set(logits);
    applyBias(this.adjusted, this.params);
    applyPenalties(this.adjusted, history, this.params, this.counts);
    return this.adjusted;
  }

  /** The candidates that survive top-k, top-p and min-p. */
  private filter(logits: Float32Array, history: ArrayLike<number>): Candidates {
    const c = this.candidates;
    c.reset(this.adjust(logits, history));
    c.keepTopK(this.params.topK);
    c.keepTopP(this.params.topP);
    c.keepMinP(this.params.minP);
    return c;
  }
}

/** The first index of the largest value; NaN and −Infinity never win. */
export function argmax(values: Float32Array): number {
  let best = -1;
  let bestValue = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i]! > bestValue) {
      bestValue = values[i]!;
      best = i;
    }
  }
  if (best < 0) throw new Error("no token can be sampled: every logit is -Infinity or NaN");
  return best;
}
