/**
 * The executor: runs one scheduled step on the model. With batching, every sequence's tokens
 * go through one `forwardBatch` call (each weight read once for the whole step); without, each
 * sequence gets its own call (the weights are read once per sequence) — the switch the
 * benchmark flips. It knows nothing about requests, sampling or text.
 */
import type { KVCache } from "../model/backend.ts";
import type { BatchItem, CacheOptions } from "../model/model.ts";

/**
 * What the engine needs of a model. `Model` satisfies it; so can a pipeline of shards whose
 * step is asynchronous (hidden states travelling between Durable Objects).
 */
export interface StepModel {
  readonly config: { readonly nVocab: number; readonly nCtxTrain: number };
  createCache(opts?: CacheOptions): KVCache;
  forwardBatch(batch: readonly BatchItem[]): Float32Array[] | Promise<Float32Array[]>;
}

export interface StepInput {
  cache: KVCache;
  tokens: readonly number[];
}

export interface StepOutput {
  /** Logits of each input's last token, in input order. */
  logits: Float32Array[];
  /** Forward calls made (1 when batched). */
  forwardCalls: number;
}

export class StepExecutor {
  constructor(
    readonly model: StepModel,
    readonly batching: boolean,
  ) {}

  async execute(inputs: readonly StepInput[]): Promise<StepOutput> {
    if (inputs.length === 0) return { logits: [], forwardCalls: 0 };
    if (this.batching) {
      return { logits: await this.model.forwardBatch(inputs.map((i) => ({ cache: i.cache, tokens: i.tokens }))), forwardCalls: 1 };
    }
    const logits: Float32Array[] = [];
    for (const i of inputs) logits.push((await this.model.forwardBatch([{ cache: i.cache, tokens: i.tokens }]))[0]!);
    return { logits, forwardCalls: inputs.length };
  }
}
