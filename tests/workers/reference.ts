/**
 * What the engine computes for a prompt when called directly, without the API, on the backend the
 * SessionDOs use (BACKEND): the tests hold the API's output to it token for token.
 */
import { parseGGUF } from "../../kernels/gguf/reader.ts";
import { createServingBackend, servingBackend } from "../../durable-objects/backends.ts";
import { generate } from "../../kernels/model/generate.ts";
import { loadModel, type Model } from "../../kernels/model/model.ts";
import { Sampler, type SamplingParams } from "../../kernels/sampling/index.ts";
import { Tokenizer } from "../../kernels/tokenizer/index.ts";
import { fixtureBytes, testEnv } from "./helpers.ts";

const loaded = new Map<string, Promise<{ model: Model; tokenizer: Tokenizer }>>();

export function referenceModel(path: string): Promise<{ model: Model; tokenizer: Tokenizer }> {
  let m = loaded.get(path);
  if (!m) {
    m = fixtureBytes(path).then(async (bytes) => {
      const file = parseGGUF(bytes);
      const backend = await createServingBackend(servingBackend(testEnv.BACKEND));
      return { model: loadModel(file, backend), tokenizer: Tokenizer.fromMetadata(file.metadata) };
    });
    loaded.set(path, m);
  }
  return m;
}

/** Greedy (or seeded) continuation of `prompt`, stopping at end-of-generation unless ignoreEos. */
export async function referenceTokens(path: string, prompt: number[], maxTokens: number, opts: { sampling?: SamplingParams; ignoreEos?: boolean; nCtx?: number } = {}): Promise<number[]> {
  const { model, tokenizer } = await referenceModel(path);
  const cache = model.createCache({ nCtx: opts.nCtx ?? prompt.length + maxTokens });
  const sampler = new Sampler(opts.sampling ?? { temperature: 0 }, model.config.nVocab);
  const out: number[] = [];
  for (const t of generate(model, cache, { prompt, maxTokens, pick: (logits, history) => sampler.sample(logits, history) })) {
    out.push(t);
    if (!opts.ignoreEos && tokenizer.isEog(t)) break;
  }
  return out;
}

/** The text generated ids continue a prompt with, as the API renders it (leading space kept, control tokens as nothing). */
export function continuationText(tokenizer: Tokenizer, ids: readonly number[]): string {
  const bos = tokenizer.encode("", { addSpecial: true });
  const primed = bos.length > 0 && bos[0] === tokenizer.bos;
  return tokenizer.decode(primed ? [bos[0]!, ...ids] : [...ids], { skipSpecial: true });
}
