/**
 * The shard plan: how a model is cut into contiguous layer ranges, one per ShardDO, so that each
 * shard's weights + its KV budget + scratch for one batched step fit a memory budget. The first
 * shard also holds the token embeddings, the last the output norm and head (and, for a tied head,
 * the embeddings again). Computed from the tensor index alone (`petrel shard`), stored next to
 * the model in R2 (`plans/ID.json`, named by the manifest's `shard_plan`), and read by the
 * PipelineExecutor and every ShardDO. The plan also carries the shards' batching settings.
 */
import type { GGUFHeader, GGUFTensorInfo } from "../kernels/gguf/types.ts";
import { kvCacheShapeBytes, type KVCacheShape, type KVType } from "../kernels/model/backend.ts";
import { type ModelConfig, readModelConfig } from "../kernels/model/config.ts";
import type { ModelManifest } from "../workers/manifest.ts";

/** How a ShardDO gathers concurrent steps into one batched forward. */
export interface BatchingConfig {
  /**
   * How long a step may wait for others to join its batch (ms). 0 (the default): continuous
   * batching alone — whatever is queued when the shard is free runs together, which measured
   * faster locally than any window (bench:batch); a few ms can gather steps that arrive spread out.
   */
  windowMs: number;
  /** Sessions in one forward; 1 disables batching. */
  maxBatch: number;
  /** Tokens in one forward, all sessions together (long prefills are cut to fit). */
  tokenBudget: number;
  /** Tokens of one session in one forward. */
  prefillChunk: number;
  /** A session left out this many forwards goes first (fairness). */
  starvationSteps: number;
  /** Steps waiting at a shard beyond which new ones are refused (429). */
  queueLimit: number;
}

export const DEFAULT_BATCHING: BatchingConfig = { windowMs: 5, maxBatch: 16, tokenBudget: 128, prefillChunk: 64, starvationSteps: 4, queueLimit: 64 };

export interface ShardSpec {
  index: number;
  /** Layers [first, end). */
  first: number;
  end: number;
  /** The tensors this shard reads from R2. */
  tensors: string[];
  weightBytes: number;
  /** KV-cache bytes its sessions may hold together (least recently used evicted beyond it). */
  kvBudgetBytes: number;
  scratchBytes: number;
  totalBytes: number;
}

export interface ShardPlan {
  version: 1;
  nLayer: number;
  nCtx: number;
  kvType: KVType;
  budgetBytes: number;
  /** Pipelines serving the model side by side; a session sticks to one. */
  replicas: number;
  batching: BatchingConfig;
  shards: ShardSpec[];
}

export interface PlanOptions {
  budgetBytes: number;
  nCtx: number;
  kvType: KVType;
  /** Per-shard KV budget; default a quarter of the budget. */
  kvBudgetBytes?: number;
  /** At least this many shards (layers spread evenly), even when fewer would fit. */
  minShards?: number;
  replicas?: number;
  batching?: Partial<BatchingConfig>;
}

/** A plan that cannot be made (a layer alone is over the budget…): names the numbers. */
export class ShardPlanError extends Error {
  override name = "ShardPlanError";
}

const mb = (b: number) => `${(b / (1024 * 1024)).toFixed(1)} MB`;

/** Bytes a tensor holds once loaded: matrices in their blocks, vectors as float32. */
const loadedBytes = (t: GGUFTensorInfo) => (t.dims.length === 1 ? t.nElements * 4 : t.nBytes);

/** KV-cache bytes of one sequence at nCtx positions over `layers` layers. */
export function sequenceKvBytes(config: ModelConfig, layers: number, nCtx: number, kvType: KVType): number {
  return kvCacheShapeBytes(sequenceKvShape(config, layers, nCtx, kvType));
}

/** The paged cache shape of one sequence on a shard of `layers` layers. */
export function sequenceKvShape(config: ModelConfig, layers: number, nCtx: number, kvType: KVType): KVCacheShape {
  return { nLayers: layers, nCtx, kvDim: config.nHeadKv * config.headDim, type: kvType, paged: true };
}

/** Activations of one batched step of `tokens` tokens, attention scores, and the logits of `rows` rows on the last shard. */
function scratchBytes(config: ModelConfig, batching: BatchingConfig, nCtx: number, last: boolean): number {
  const { nEmbd, nHead, nHeadKv, headDim, nFf, nVocab } = config;
  const n = batching.tokenBudget;
  const activations = n * (3 * nEmbd + 2 * nHead * headDim + 2 * nHeadKv * headDim + 2 * nFf) * 4;
  const logits = last ? batching.maxBatch * nVocab * 4 : 0;
  return activations + nCtx * nHead * 4 + logits;
}

export function planShards(header: GGUFHeader, opts: PlanOptions): ShardPlan {
  const config = readModelConfig(header);
  const batching = { ...DEFAULT_BATCHING, ...opts.batching };
  const kvBudget = opts.kvBudgetBytes ?? Math.floor(opts.budgetBytes / 4);
  const byName = new Map(header.tensors.map((t) => [t.name, t]));
  const layerTensors: GGUFTensorInfo[][] = Array.from({ length: config.nLayer }, () => []);
  for (const t of header.tensors) {
    const m = /^blk\.(\d+)\./.exec(t.name);
    if (m && Number(m[1]) < config.nLayer) layerTensors[Number(m[1])]!.push(t);
  }
  const named = (names: string[]) => names.map((n) => byName.get(n)).filter((t): t is GGUFTensorInfo => t !== undefined);
  const embed = named(["token_embd.weight"]);
  const head = named(config.tiedOutput ? ["output_norm.weight", "token_embd.weight"] : ["output_norm.weight", "output.weight"]);
  const minShards = Math.max(1, opts.minShards ?? 1);

  const spec = (index: number, first: number, end: number): ShardSpec => {
    const tensors = new Set<GGUFTensorInfo>();
    if (first === 0) embed.forEach((t) => tensors.add(t));
    for (let l = first; l < end; l++) layerTensors[l]!.forEach((t) => tensors.add(t));
    if (end === config.nLayer) head.forEach((t) => tensors.add(t));
    const weightBytes = [...tensors].reduce((n, t) => n + loadedBytes(t), 0);
    const scratch = scratchBytes(config, batching, opts.nCtx, end === config.nLayer);
    return { index, first, end, tensors: [...tensors].map((t) => t.name), weightBytes, kvBudgetBytes: kvBudget, scratchBytes: scratch, totalBytes: weightBytes + kvBudget + scratch };
  };
  const fits = (s: ShardSpec) => s.totalBytes <= opts.budgetBytes && sequenceKvBytes(config, s.end - s.first, opts.nCtx, opts.kvType) <= kvBudget;

  const shards: ShardSpec[] = [];
  let first = 0;
  while (first < config.nLayer) {
    let end = first + 1;
    const alone = spec(shards.length, first, end);
    if (!fits(alone)) {
      throw new ShardPlanError(`layer ${first} alone needs weights ${mb(alone.weightBytes)} + KV budget ${mb(kvBudget)} + scratch ${mb(alone.scratchBytes)} = ` +
        `${mb(alone.totalBytes)} (one sequence's KV at n_ctx ${opts.nCtx}: ${mb(sequenceKvBytes(config, 1, opts.nCtx, opts.kvType))}), over the budget of ${mb(opts.budgetBytes)}`);
    }
    // With minShards, the layers left are spread evenly over the shards still wanted.
    const cap = Math.ceil((config.nLayer - first) / Math.max(1, minShards - shards.length));
    while (end < config.nLayer && end - first < cap && fits(spec(shards.length, first, end + 1))) end++;
    // The head joins the last range: if it does not fit there, the last layer moves to a shard of its own.
    shards.push(spec(shards.length, first, end));
    first = end;
  }
  return { version: 1, nLayer: config.nLayer, nCtx: opts.nCtx, kvType: opts.kvType, budgetBytes: opts.budgetBytes, replicas: opts.replicas ?? 1, batching, shards };
}

/** A manifest entry of a sharded model names its plan in the bucket. */
export type ShardedManifest = ModelManifest & { shard_plan?: string };

export const planKey = (id: string) => `plans/${id}.json`;

/** Checks a plan read from R2 (its shape, and that its ranges cover the model's layers in order). */
export function isShardPlan(v: unknown): v is ShardPlan {
  if (typeof v !== "object" || v === null) return false;
  const p = v as ShardPlan;
  if (p.version !== 1 || !Array.isArray(p.shards) || p.shards.length === 0 || !(p.replicas >= 1) || typeof p.batching !== "object") return false;
  let next = 0;
  for (const s of p.shards) {
    if (s.first !== next || !(s.end > s.first) || !Array.isArray(s.tensors)) return false;
    next = s.end;
  }
  return next === p.nLayer;
}
