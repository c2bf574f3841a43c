/**
 * One turn's token loop inside a SessionDO: reuse the longest cached prefix, prefill the rest in
 * chunks (yielding to the event loop between chunks and tokens so that a disconnect or a second
 * request is noticed), then sample one token per step until EOG, a stop string or max_tokens.
 * Text is released only when it is complete UTF-8 and cannot be the start of a stop string.
 */
import { Sampler, StopStringMatcher, type SamplingParams } from "../kernels/sampling/index.ts";
import { commonPrefix, type LoadedModel, type SessionCache } from "./executor.ts";

export interface GenerationRequest {
  prompt: number[];
  maxTokens: number;
  sampling: SamplingParams;
  stop: string[];
  /** Keep going past end-of-generation tokens (they are then decoded like any token). */
  ignoreEos: boolean;
}

export interface GenerationHooks {
  /** Text cleared for sending and the tokens generated since the previous call; awaited before the loop goes on. */
  onText(text: string, tokens: number[]): void | Promise<void>;
  /** Checked between steps: true stops the loop (client gone). */
  cancelled(): boolean;
  /** The prompt is in the cache and the first token is about to be sampled. */
  prefilled?(): void;
}

/** content_filter: the output guard stopped the reply (workers/moderation). */
export type FinishReason = "stop" | "length" | "content_filter";

export interface GenerationResult {
  /** null: stopped early because the client went away. */
  finish: FinishReason | null;
  tokens: number[];
  text: string;
  promptTokens: number;
  /** Prompt tokens whose K/V came from the cache (not prefilled). */
  cachedTokens: number;
}

/**
 * A stream decoder for text that continues `prompt`: control tokens render as nothing, and the
 * first generated piece keeps its leading space (a decoder that starts a text drops it for
 * vocabularies that add a space prefix). It is primed with the BOS the vocabulary adds, which
 * marks the start as "after a BOS" and renders as nothing.
 */
export function continuationDecoder(loaded: Pick<LoadedModel, "tokenizer">) {
  const { tokenizer } = loaded;
  const decoder = tokenizer.createStreamDecoder({ skipSpecial: true });
  const added = tokenizer.encode("", { addSpecial: true });
  if (added.length > 0 && added[0] === tokenizer.bos) decoder.push(added[0]!);
  return decoder;
}

const nextTask = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export async function runGeneration(loaded: LoadedModel, cache: SessionCache, req: GenerationRequest, hooks: GenerationHooks, prefillChunk: number): Promise<GenerationResult> {
  const { model, tokenizer } = loaded;
  const kv = cache.kv!;
  const prompt = req.prompt;

  // Prefix reuse: keep what the cache shares with this prompt (at least one token must be fed
  // to get logits), cut the rest.
  const keep = Math.min(commonPrefix(cache.tokens, prompt), prompt.length - 1);
  kv.truncate(keep);
  cache.tokens.length = keep;

  const result: GenerationResult = { finish: null, tokens: [], text: "", promptTokens: prompt.length, cachedTokens: keep };
  let logits: Float32Array | undefined;
  for (let i = keep; i < prompt.length; i += prefillChunk) {
    if (hooks.cancelled()) return result;
    const part = prompt.slice(i, i + prefillChunk);
    logits = await model.forward(kv, part);
    cache.tokens.push(...part);
    await nextTask();
  }

  hooks.prefilled?.();
  const sampler = new Sampler(req.sampling, model.config.nVocab);
  const decoder = continuationDecoder(loaded);
  const stops = new StopStringMatcher(req.stop);
  const history = [...prompt];
  let pending: number[] = [];
  const emit = async (text: string) => {
    if (text.length === 0 && pending.length === 0) return;
    result.text += text;
    const tokens = pending;
    pending = [];
    await hooks.onText(text, tokens);
  };

  for (let step = 0; step < req.maxTokens; step++) {
    if (hooks.cancelled()) return result;
    const token = sampler.sample(logits!, history);
    history.push(token);
    result.tokens.push(token);
    pending.push(token);
    if (!req.ignoreEos && tokenizer.isEog(token)) {
      result.finish = "stop";
      const tail = stops.push(decoder.flush());
      await emit(tail.stopped ? tail.text : tail.text + stops.flush());
      break;
    }
    const { text, stopped } = stops.push(decoder.push(token));
    if (stopped) {
      result.finish = "stop";
      await emit(text);
      break;
    }
    if (text.length > 0) await emit(text);
    if (step + 1 < req.maxTokens) {
      logits = await model.forward(kv, [token]);
      cache.tokens.push(token);
    }
    await nextTask();
  }
  if (result.finish === null && !hooks.cancelled()) {
    const tail = stops.push(decoder.flush());
    result.finish = tail.stopped ? "stop" : "length";
    await emit(tail.stopped ? tail.text : tail.text + stops.flush());
  }
  return result;
}
