import { describe, expect, it } from "vitest";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { GGMLType } from "../kernels/gguf/types.ts";
import { createJsBackend } from "../kernels/model/backends/js.ts";
import { loadModel, type Model } from "../kernels/model/model.ts";
import { beamSearch, modelBeams, type BeamModel } from "../kernels/sampling/index.ts";
import { synthesize } from "../scripts/lib/synth.ts";

const model: Model = loadModel(
  parseGGUF(synthesize({ arch: "llama", nEmbd: 64, nLayer: 2, nHead: 8, nHeadKv: 2, nFf: 96, type: GGMLType.F32, vocab: 300, seed: 11, nCtx: 64 })),
  createJsBackend(),
);
const prompt = [1, 40, 41, 77, 5];

/** No caches shared or forked: every step recomputes the whole sequence from a fresh cache. */
function recomputing(): BeamModel<number[]> {
  const logitsAfter = (tokens: number[]) => model.forward(model.createCache({ nCtx: 64 }), [...prompt, ...tokens]);
  return {
    root: () => ({ state: [], logits: logitsAfter([]) }),
    fork: (tokens) => [...tokens],
    extend: (steps) => steps.map(({ state, token }) => (state.push(token), logitsAfter(state))),
    release: () => {},
  };
}

describe("modelBeams (one KV-cache per beam)", () => {
  it("finds what recomputing every sequence from scratch finds", async () => {
    const opts = { width: 4, lengthPenalty: 1, maxTokens: 6, eos: (t: number) => t === 2 };
    const viaCaches = await beamSearch(opts, modelBeams(model, prompt, { nCtx: 64, prefillChunk: 2 }));
    const reference = await beamSearch(opts, recomputing());
    expect(viaCaches.map((h) => h.tokens)).toEqual(reference.map((h) => h.tokens));
    viaCaches.forEach((h, i) => expect(h.logprob).toBeCloseTo(reference[i]!.logprob, 3));
    expect(viaCaches).toHaveLength(4);
  });

  it("refuses an empty prompt", () => {
    expect(() => modelBeams(model, [], { nCtx: 64 })).toThrow(/at least one token/);
  });
});
