/// <reference types="@webgpu/types" />
/**
 * A whole Llama-family model on the GPU: the forward pass of kernels/model/model.ts, with weights
 * uploaded once in their GGUF blocks, the KV-cache in GPU buffers, and every layer of a step
 * recorded into one command buffer. The logits are the only data read back per step, which is
 * why this is a model runner with an asynchronous forward rather than a synchronous Backend.
 */
import type { GGUFFile } from "../gguf/reader.ts";
import type { GGUFHeader } from "../gguf/types.ts";
import type { KVCache, KVType } from "../model/backend.ts";
import { type ModelConfig, ModelConfigError, readModelConfig } from "../model/config.ts";
import type { BatchItem, CacheOptions, ForwardOptions, TensorBytes } from "../model/model.ts";
import { type Activations, createActivations, destroyActivations, maxBatchFor } from "./activations.ts";
import { storageFromFloats, storage } from "./buffers.ts";
import { MAP_MODE_READ } from "./constants.ts";
import type { WebGpuDevice } from "./device.ts";
import { withGpuErrors } from "./errors.ts";
import { WebGpuKVCache } from "./kv-cache.ts";
import { type GpuModelWeights, destroyWeights, uploadWeights } from "./model-weights.ts";
import { type Op, type OpContext, embedOp, matmulOp } from "./ops.ts";
import { rmsNormOp, ropeKernel, ropeOp, swigluOp } from "./ops-activation.ts";
import { type AttentionShape, type KvKernels, attentionOp, kvKernels, kvStoreOp } from "./ops-cache.ts";
import { pipelinesOf } from "./pipelines.ts";
import { ropeTable } from "./rope-table.ts";
import { MAX_HEAD_DIM } from "./wgsl/attention.ts";

export interface WebGpuModelOptions {
  /** Most tokens one GPU step takes (longer inputs run as several steps). Default 128. */
  maxBatch?: number;
  /** Caps one weight buffer below the device's binding limit (forces split weights in tests). */
  maxWeightBindingBytes?: number;
  /** Threads per weight row in the decode matmuls: by default 1 on CPU-emulated adapters, 16 on GPUs. */
  matvecThreadsPerRow?: 1 | 16;
}

interface LayerOps {
  attnNorm: Op;
  q: Op;
  k: Op;
  v: Op;
  out: Op;
  ffnNorm: Op;
  gate: Op;
  up: Op;
  swiglu: Op;
  down: Op;
}

interface ModelOps {
  embed: Op;
  layers: LayerOps[];
  headNorm: Op;
  head: Op;
}

/** Where RoPE reads its angles: the table covers positions 0 … rows − 1. */
interface Rope {
  rows: number;
  table: GPUBuffer;
  q: Op;
  k: Op;
}

export class WebGpuModel {
  readonly attention: AttentionShape;
  private tail: Promise<unknown> = Promise.resolve();
  private rope?: Rope;

  private constructor(
    readonly config: ModelConfig,
    readonly gpu: WebGpuDevice,
    /** Most tokens per GPU step. */
    readonly maxBatch: number,
    private readonly ctx: OpContext,
    private readonly weights: GpuModelWeights,
    private readonly act: Activations,
    private readonly ops: ModelOps,
    private readonly ropePipeline: GPUComputePipeline,
    private readonly kv: Record<KVType, KvKernels>,
  ) {
    this.attention = { nHead: config.nHead, nHeadKv: config.nHeadKv, headDim: config.headDim, scale: 1 / Math.sqrt(config.headDim) };
  }

  /** Uploads a model's weights and compiles its kernels. */
  static async load(header: GGUFHeader, bytesOf: TensorBytes, gpu: WebGpuDevice, opts: WebGpuModelOptions = {}): Promise<WebGpuModel> {
    const config = readModelConfig(header);
    if (config.headDim % 4 !== 0 || config.headDim > MAX_HEAD_DIM) {
      throw new ModelConfigError(`the WebGPU kernels need a head size that is a multiple of 4 and at most ${MAX_HEAD_DIM}, got ${config.headDim}`);
    }
    const { device } = gpu;
    const parts: { weights?: GpuModelWeights; act?: Activations } = {};
    try {
      return await withGpuErrors(device, "WebGPU could not load the model", async () => {
        const weights = (parts.weights = uploadWeights(device, header, bytesOf, config, opts.maxWeightBindingBytes));
        const maxBatch = maxBatchFor(config, device, opts.maxBatch ?? 128);
        const act = (parts.act = createActivations(device, config, maxBatch));
        const ctx: OpContext = {
          device,
          pipelines: pipelinesOf(device),
          f16: gpu.precision === "f16",
          noBias: act.noBias,
          matvecTeam: opts.matvecThreadsPerRow ?? (gpu.software ? 1 : 16),
        };
        const [ops, ropePipeline, f32, f16] = await Promise.all([buildOps(ctx, config, weights, act), ropeKernel(ctx), kvKernels(ctx, "f32"), kvKernels(ctx, "f16")]);
        return new WebGpuModel(config, gpu, maxBatch, ctx, weights, act, ops, ropePipeline, { f32, f16 });
      });
    } catch (e) {
      if (parts.weights) destroyWeights(parts.weights);
      if (parts.act) destroyActivations(parts.act);
      throw e;
    }
  }

  /** Bytes of GPU memory the weights take. */
  get weightBytes(): number {
    return this.weights.bytes;
  }

  /** A KV-cache for one new sequence (GPU buffers; `destroy()` frees them early). */
  createCache(opts: CacheOptions = {}): WebGpuKVCache {
    const nCtx = opts.nCtx ?? this.config.nCtxTrain;
    if (!Number.isInteger(nCtx) || nCtx <= 0) throw new RangeError(`context size must be a positive integer, got ${nCtx}`);
    const type = opts.kvType ?? "f32";
    const { nLayer, nHeadKv, headDim } = this.config;
    const kvDim = nHeadKv * headDim;
    const layerBytes = nCtx * kvDim * (type === "f16" ? 2 : 4);
    const limit = Math.min(this.ctx.device.limits.maxStorageBufferBindingSize, this.ctx.device.limits.maxBufferSize);
    if (layerBytes > limit) throw new RangeError(`a context of ${nCtx} positions needs ${layerBytes} bytes per layer, over the device's binding limit of ${limit}`);
    this.ropeFor(nCtx); // grown now, so that steps on this cache never rebuild it mid-sequence
    const k = Array.from({ length: nLayer }, (_, l) => storage(this.ctx.device, `k cache ${l}`, layerBytes));
    const v = Array.from({ length: nLayer }, (_, l) => storage(this.ctx.device, `v cache ${l}`, layerBytes));
    const { act, ctx } = this;
    const kernels = this.kv[type];
    const layers = k.map((kl, l) => ({
      store: kvStoreOp(ctx, kernels, act.k, act.v, kl, v[l]!, kvDim, act.bodyStep),
      attend: attentionOp(ctx, kernels, act.q, kl, v[l]!, act.att, this.attention, act.bodyStep),
    }));
    return new WebGpuKVCache({ nLayers: nLayer, nCtx, kvDim, type }, this, ctx.device, k, v, layers);
  }

  /**
   * Runs `tokens` after what `cache` holds, appends their K/V to it, and resolves to the logits
   * of the last token (or of every token with allLogits). Calls on one model run in call order.
   */
  forward(cache: KVCache, tokens: ArrayLike<number>, opts: ForwardOptions = {}): Promise<Float32Array> {
    const ids = Uint32Array.from(tokens as ArrayLike<number>);
    for (let t = 0; t < tokens.length; t++) {
      const id = tokens[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.config.nVocab) {
        return Promise.reject(new RangeError(`token id ${id} is outside the vocabulary (0..${this.config.nVocab - 1})`));
      }
    }
    if (ids.length === 0) return Promise.reject(new RangeError("forward needs at least one token"));
    if (!(cache instanceof WebGpuKVCache) || cache.owner !== this) return Promise.reject(new TypeError("forward needs a cache made by this model's createCache"));
    return this.exclusive(async () => {
      cache.checkAlive();
      if (cache.length + ids.length > cache.shape.nCtx) {
        throw new RangeError(`context overflow: ${cache.length} cached + ${ids.length} new tokens > context size ${cache.shape.nCtx}`);
      }
      const rows: Float32Array[] = [];
      for (let start = 0; start < ids.length; start += this.maxBatch) {
        const chunk = ids.subarray(start, start + this.maxBatch);
        const wanted = opts.allLogits ? chunk.length : start + chunk.length === ids.length ? 1 : 0;
        const logits = await this.step(cache, chunk, wanted);
        if (logits) rows.push(logits);
      }
      return rows.length === 1 ? rows[0]! : concat(rows);
    });
  }

  /**
   * The serving engine's step (kernels/engine StepModel): each sequence is its own GPU step, one
   * after another; batching several sequences into one step is not done on the GPU.
   */
  async forwardBatch(batch: readonly BatchItem[]): Promise<Float32Array[]> {
    const logits: Float32Array[] = [];
    for (const item of batch) logits.push(await this.forward(item.cache, item.tokens, { allLogits: item.allLogits }));
    return logits;
  }

  /** Frees the weights and per-step buffers (caches are freed by their own destroy). */
  destroy(): void {
    destroyWeights(this.weights);
    destroyActivations(this.act);
    this.rope?.table.destroy();
  }

  /** One GPU submission: `ids` through every layer, then the output head for the last `wanted` rows. */
  private async step(cache: WebGpuKVCache, ids: Uint32Array, wanted: number): Promise<Float32Array | undefined> {
    const { device } = this.ctx;
    const { act, ops } = this;
    const n = ids.length;
    const pos0 = cache.length;
    const rope = this.ropeFor(cache.shape.nCtx);
    device.queue.writeBuffer(act.ids, 0, ids);
    device.queue.writeBuffer(act.bodyStep, 0, Uint32Array.of(n, pos0, 0, 0));
    device.queue.writeBuffer(act.headStep, 0, Uint32Array.of(wanted, pos0, n - wanted, 0));
    const bytes = wanted * this.config.nVocab * 4;

    const submitted = withGpuErrors(device, "WebGPU step failed", () => {
      const encoder = device.createCommandEncoder({ label: "forward step" });
      const pass = encoder.beginComputePass();
      ops.embed.encode(pass, n);
      ops.layers.forEach((layer, l) => {
        const { store, attend } = cache.layers[l]!;
        const attention = [layer.attnNorm, layer.q, layer.k, layer.v, rope.q, rope.k, store, attend, layer.out];
        const feedForward = [layer.ffnNorm, layer.gate, layer.up, layer.swiglu, layer.down];
        for (const op of [...attention, ...feedForward]) op.encode(pass, n);
      });
      if (wanted > 0) {
        ops.headNorm.encode(pass, wanted);
        ops.head.encode(pass, wanted);
      }
      pass.end();
      if (wanted > 0) encoder.copyBufferToBuffer(act.logits, 0, act.staging, 0, bytes);
      device.queue.submit([encoder.finish()]);
    });
    // Waiting for the error check and the readback together saves a round trip per token.
    const mapped = wanted > 0 ? act.staging.mapAsync(MAP_MODE_READ, 0, bytes) : Promise.resolve();
    try {
      await submitted;
    } catch (e) {
      await mapped.catch(() => undefined);
      if (act.staging.mapState === "mapped") act.staging.unmap();
      throw e;
    }
    cache.length = pos0 + n;
    if (wanted === 0) return undefined;
    await mapped;
    const logits = new Float32Array(act.staging.getMappedRange(0, bytes).slice(0));
    act.staging.unmap();
    return logits;
  }

  /** The RoPE ops, with a table grown to cover nCtx positions. */
  private ropeFor(nCtx: number): Rope {
    if (this.rope && this.rope.rows >= nCtx) return this.rope;
    this.rope?.table.destroy();
    const { config, ctx, act } = this;
    const { nHead, nHeadKv, headDim, rope } = config;
    const table = storageFromFloats(ctx.device, "rope table", ropeTable(rope, nCtx));
    this.rope = {
      rows: nCtx,
      table,
      q: ropeOp(ctx, this.ropePipeline, act.q, table, nHead, headDim, rope.nDims, rope.neox, act.bodyStep),
      k: ropeOp(ctx, this.ropePipeline, act.k, table, nHeadKv, headDim, rope.nDims, rope.neox, act.bodyStep),
    };
    return this.rope;
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

async function buildOps(ctx: OpContext, config: ModelConfig, w: GpuModelWeights, act: Activations): Promise<ModelOps> {
  const { nEmbd, nFf, rmsEps } = config;
  const layers = await Promise.all(
    w.layers.map(async (lw): Promise<LayerOps> => {
      const [attnNorm, q, k, v, out, ffnNorm, gate, up, swiglu, down] = await Promise.all([
        rmsNormOp(ctx, act.x, act.xb, lw.attnNorm, nEmbd, rmsEps, act.bodyStep),
        matmulOp(ctx, lw.wq, act.xb, act.q, act.bodyStep, { bias: lw.bq }),
        matmulOp(ctx, lw.wk, act.xb, act.k, act.bodyStep, { bias: lw.bk }),
        matmulOp(ctx, lw.wv, act.xb, act.v, act.bodyStep, { bias: lw.bv }),
        matmulOp(ctx, lw.wo, act.att, act.x, act.bodyStep, { accumulate: true }),
        rmsNormOp(ctx, act.x, act.xb, lw.ffnNorm, nEmbd, rmsEps, act.bodyStep),
        matmulOp(ctx, lw.wGate, act.xb, act.gate, act.bodyStep),
        matmulOp(ctx, lw.wUp, act.xb, act.up, act.bodyStep),
        swigluOp(ctx, act.gate, act.up, nFf, act.bodyStep),
        matmulOp(ctx, lw.wDown, act.gate, act.x, act.bodyStep, { accumulate: true }),
      ]);
      return { attnNorm, q, k, v, out, ffnNorm, gate, up, swiglu, down };
    }),
  );
  const [embed, headNorm, head] = await Promise.all([
    embedOp(ctx, w.tokenEmbd, act.ids, act.x, act.bodyStep),
    rmsNormOp(ctx, act.x, act.xb, w.outputNorm, nEmbd, rmsEps, act.headStep),
    matmulOp(ctx, w.output, act.xb, act.logits, act.headStep),
  ]);
  return { embed, layers, headNorm, head };
}

function concat(rows: Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of rows) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

/** Loads a model from a GGUF file held in memory onto a WebGPU device. */
export function loadWebGpuModel(file: GGUFFile, gpu: WebGpuDevice, opts: WebGpuModelOptions = {}): Promise<WebGpuModel> {
  return WebGpuModel.load(file, (t) => file.bytes.subarray(t.fileOffset, t.fileOffset + t.nBytes), gpu, opts);
}
