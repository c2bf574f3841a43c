/**
 * The token loop: prefill the prompt (in chunks, so one step never holds a huge batch), then one
 * decode step per token. The caller owns the cache (so it can reuse a prefix) and decides when to
 * stop; this only produces tokens and, on request, the logits that led to each.
 */
import type { KVCache } from "./backend.ts";
import type { Model } from "./model.ts";

export interface GenerateOptions {
  /** Tokens to feed after what the cache already holds. */
  prompt: ArrayLike<number>;
  /** The tokens the cache already holds (the history penalties look at); empty by default. */
  context?: readonly number[];
  /** Upper bound on generated tokens. */
  maxTokens: number;
  /** Picks the next token; defaults to greedy argmax (first index on ties). */
  pick?: (logits: Float32Array, history: readonly number[]) => number;
  /** Teacher forcing: use these ids as the continuation instead of picking (then resume picking). */
  force?: readonly number[];
  /** Called with the logits before continuation token `step` is chosen. */
  onLogits?: (logits: Float32Array, step: number) => void;
  /** Largest batch fed to one forward call while prefilling. */
  prefillChunk?: number;
}

/** Yields continuation tokens one at a time; the consumer may stop early (e.g. at EOS or a stop string). */
export function* generate(model: Model, cache: KVCache, opts: GenerateOptions): Generator<number, void, undefined> {
  const chunk = opts.prefillChunk ?? 256;
  checkFits(cache, opts);
  const prompt = Array.from(opts.prompt);
  let logits!: Float32Array;
  for (let i = 0; i < prompt.length; i += chunk) logits = model.forward(cache, prompt.slice(i, i + chunk));

  const choose = tokenChooser(opts, prompt);
  for (let step = 0; step < opts.maxTokens; step++) {
    const token = choose(logits, step);
    yield token;
    if (step + 1 < opts.maxTokens) logits = model.forward(cache, [token]);
  }
}

/** Throws unless the prompt is non-empty and prompt + new tokens fit the cache's context. */
export function checkFits(cache: KVCache, opts: Pick<GenerateOptions, "prompt" | "maxTokens">): void {
  if (opts.prompt.length === 0) throw new RangeError("the prompt must hold at least one token");
  const needed = cache.length + opts.prompt.length + Math.max(opts.maxTokens - 1, 0);
  if (needed > cache.shape.nCtx) {
    throw new RangeError(`context overflow: ${cache.length} cached + ${opts.prompt.length} prompt + ${opts.maxTokens} new tokens > context size ${cache.shape.nCtx}`);
  }
}

/** Picks continuation token `step` from its logits (forced tokens first), keeping the history the picker sees. */
export function tokenChooser(opts: GenerateOptions, prompt: readonly number[]): (logits: Float32Array, step: number) => number {
  const pick = opts.pick ?? argmax;
  const history = [...(opts.context ?? []), ...prompt];
  return (logits, step) => {
    opts.onLogits?.(logits, step);
    const token = opts.force && step < opts.force.length ? opts.force[step]! : pick(logits, history);
    history.push(token);
    return token;
  };
}

export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}
