/**
 * Explicit memory accounting. A Worker isolate has 128 MB and objects of one class may share an
 * isolate, so what a model needs is computed up front — weights + KV-cache at the serving context
 * length and KV type + scratch for one step — and checked against a budget (default 112 MB).
 * miniflare does not enforce the isolate limit; these figures are what Petrel enforces.
 */
import type { GGUFHeader } from "../kernels/gguf/types.ts";
import type { KVType } from "../kernels/model/backend.ts";
import type { ModelConfig } from "../kernels/model/config.ts";

export const MB = 1024 * 1024;

export interface MemoryPlan {
  /** Weight matrices in their GGUF blocks, plus 1-D tensors as float32. */
  weights: number;
  /** K and V of every layer at nCtx positions. */
  kvCache: number;
  /** Activations of one prefill chunk, the logits row, attention scores and the sampler's buffers. */
  scratch: number;
  /** Tokenizer and metadata (the GGUF header, held as JS strings and arrays). */
  tokenizer: number;
  total: number;
  nCtx: number;
  kvType: KVType;
}

export function kvCacheBytes(config: ModelConfig, nCtx: number, kvType: KVType): number {
  return 2 * config.nLayer * nCtx * config.nHeadKv * config.headDim * (kvType === "f16" ? 2 : 4);
}

export function planMemory(header: GGUFHeader, config: ModelConfig, opts: { nCtx: number; kvType: KVType; prefillChunk: number }): MemoryPlan {
  let weights = 0;
  for (const t of header.tensors) weights += t.dims.length === 1 ? t.nElements * 4 : t.nBytes;
  const { nEmbd, nHead, nHeadKv, headDim, nFf, nVocab } = config;
  const n = opts.prefillChunk;
  const activations = n * (2 * nEmbd + 2 * nHead * headDim + 2 * nHeadKv * headDim + 2 * nFf) * 4;
  const scratch = activations + nVocab * 4 /* logits */ + opts.nCtx * 4 /* scores */ + nVocab * 12 /* sampler */;
  // The header's bytes, twice over: strings become UTF-16 and arrays carry per-element overhead.
  const tokenizer = header.dataOffset * 2;
  const kvCache = kvCacheBytes(config, opts.nCtx, opts.kvType);
  return { weights, kvCache, scratch, tokenizer, total: weights + kvCache + scratch + tokenizer, nCtx: opts.nCtx, kvType: opts.kvType };
}

export const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

/** "weights 3.5 MB + KV-cache 4.0 MB (n_ctx 512, f32) + scratch 0.3 MB + tokenizer 0.1 MB = 7.9 MB" */
export function describePlan(plan: MemoryPlan): string {
  return `weights ${mb(plan.weights)} + KV-cache ${mb(plan.kvCache)} (n_ctx ${plan.nCtx}, ${plan.kvType}) + scratch ${mb(plan.scratch)} + tokenizer ${mb(plan.tokenizer)} = ${mb(plan.total)}`;
}
