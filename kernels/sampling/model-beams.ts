/**
 * The engine's BeamModel: one KV-cache per beam. A fork copies the parent's filled positions
 * (copyPrefixTo) into a cache taken from a pool of released ones — caches are n_ctx-sized, too
 * big to allocate every step — and each step feeds every live beam's token in one batched
 * forward pass, so the weights are read once per step for the whole beam.
 */
import type { KVCache, KVType } from "../model/backend.ts";
import type { Model } from "../model/model.ts";
import type { BeamModel } from "./beam-search.ts";

export interface ModelBeamOptions {
  /** Positions each beam's cache holds: at least prompt + maxTokens. */
  nCtx: number;
  kvType?: KVType;
  /** Largest batch fed to one forward call while prefilling the prompt. */
  prefillChunk?: number;
}

export function modelBeams(model: Model, prompt: readonly number[], opts: ModelBeamOptions): BeamModel<KVCache> {
  if (prompt.length === 0) throw new RangeError("the prompt must hold at least one token");
  const chunk = opts.prefillChunk ?? 256;
  const spare: KVCache[] = [];
  const cache = () => spare.pop() ?? model.createCache({ nCtx: opts.nCtx, kvType: opts.kvType });
  return {
    root() {
      const state = cache();
      let logits!: Float32Array;
      for (let i = 0; i < prompt.length; i += chunk) logits = model.forward(state, prompt.slice(i, i + chunk));
      return { state, logits };
    },
    fork(state) {
      const copy = cache();
      state.copyPrefixTo(copy, state.length);
      return copy;
    },
    extend(steps) {
      return model.forwardBatch(steps.map((s) => ({ cache: s.state, tokens: [s.token] })));
    },
    release(state) {
      state.truncate(0);
      spare.push(state);
    },
  };
}
