/**
 * The token loop of kernels/model/generate.ts for the WebGPU model, whose forward is
 * asynchronous: same options, same order of picks, one GPU step per token after the prompt.
 */
import { checkFits, tokenChooser, type GenerateOptions } from "../model/generate.ts";
import type { WebGpuKVCache } from "./kv-cache.ts";
import type { WebGpuModel } from "./model.ts";

/** Yields continuation tokens one at a time; the consumer may stop early (e.g. at EOS or a stop string). */
export async function* generateOnGpu(model: WebGpuModel, cache: WebGpuKVCache, opts: GenerateOptions): AsyncGenerator<number, void, undefined> {
  checkFits(cache, opts);
  const prompt = Array.from(opts.prompt);
  const chunk = opts.prefillChunk ?? model.maxBatch;
  let logits!: Float32Array;
  for (let i = 0; i < prompt.length; i += chunk) logits = await model.forward(cache, prompt.slice(i, i + chunk));

  const choose = tokenChooser(opts, prompt);
  for (let step = 0; step < opts.maxTokens; step++) {
    const token = choose(logits, step);
    yield token;
    if (step + 1 < opts.maxTokens) logits = await model.forward(cache, [token]);
  }
}
