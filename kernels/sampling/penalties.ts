/**
 * Logit adjustments that precede the filters, in llama.cpp's order: logit bias, then the
 * repetition / frequency / presence penalties over the last N tokens of the history.
 */
import type { ResolvedParams } from "./params.ts";

export function applyBias(logits: Float32Array, p: ResolvedParams): void {
  for (let i = 0; i < p.biasIds.length; i++) logits[p.biasIds[i]!]! += p.biasValues[i]!;
}

/** True when the penalties would change nothing, so counting the history can be skipped. */
export function penaltiesOff(p: ResolvedParams): boolean {
  return p.penaltyLastN === 0 || (p.repeatPenalty === 1 && p.frequencyPenalty === 0 && p.presencePenalty === 0);
}

/**
 * Penalizes each distinct token of the window once: llama.cpp's repetition penalty (divide a
 * positive logit, multiply a non-positive one) then OpenAI's count-scaled frequency penalty and
 * flat presence penalty. `counts` is caller-owned scratch, cleared here.
 */
export function applyPenalties(logits: Float32Array, history: ArrayLike<number>, p: ResolvedParams, counts: Map<number, number>): void {
  if (penaltiesOff(p)) return;
  const start = p.penaltyLastN < 0 ? 0 : Math.max(0, history.length - p.penaltyLastN);
  counts.clear();
  for (let i = start; i < history.length; i++) {
    const id = history[i]!;
    if (!(Number.isInteger(id) && id >= 0 && id < logits.length)) {
      throw new RangeError(`history[${i}] = ${id} is not a token id of this vocabulary (0..${logits.length - 1})`);
    }
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  for (const [id, count] of counts) {
    let logit = logits[id]!;
    logit = logit <= 0 ? logit * p.repeatPenalty : logit / p.repeatPenalty;
    logits[id] = logit - count * p.frequencyPenalty - p.presencePenalty;
  }
}
