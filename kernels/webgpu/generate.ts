/**
 * The token loop of kernels/model/generate.ts for the WebGPU model, whose forward is
 * asynchronous: same options, same order of picks, one GPU step per token after the prompt.
 */
import { argmax, type GenerateOptions } from "../model/generate.ts";
import type { WebGpuKVCache } from "./kv-cache.ts";
import type { WebGpuModel } from "./model.ts";

/** Yields continuation tokens one at a time; the consumer may stop early (e.g. at EOS or a stop string). */
export async function* generateOnGpu(model: WebGpuModel, cache: WebGpuKVCache, opts: GenerateOptions): AsyncGenerator<number, void, undefined> {
  if (opts.prompt.length === 0) throw new RangeError("the prompt must hold at least one token");
  const needed = cache.length + opts.prompt.length + Math.max(opts.maxTokens - 1, 0);
  if (needed > cache.shape.nCtx) {
    throw new RangeError(`context overflow: ${cache.length} cached + ${opts.prompt.length} prompt + ${opts.maxTokens} new tokens > context size ${cache.shape.nCtx}`);
  }
  const prompt = Array.from(opts.prompt);
  const chunk = opts.prefillChunk ?? model.maxBatch;
  let logits!: Float32Array;
  for (let i = 0; i < prompt.length; i += chunk) logits = await model.forward(cache, prompt.slice(i, i + chunk));

  const pick = opts.pick ?? argmax;
  const history = [...(opts.context ?? []), ...prompt];
  for (let step = 0; step < opts.maxTokens; step++) {
    opts.onLogits?.(logits, step);
    const token = opts.force && step < opts.force.length ? opts.force[step]! : pick(logits, history);
    history.push(token);
    yield token;
    if (step + 1 < opts.maxTokens) logits = await model.forward(cache, [token]);
  }
}
