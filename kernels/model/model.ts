/**
 * The Llama-family forward pass, written once against the Backend interface and meant to be read
 * top to bottom like llama2.c's run.c: embed → per layer (attention block, feed-forward block,
 * each with RMSNorm and a residual) → final norm → output projection.
 */
import type { GGUFFile } from "../gguf/reader.ts";
import type { GGUFHeader, GGUFTensorInfo } from "../gguf/types.ts";
import { dequantize } from "../quant/dequantize.ts";
import type { AttentionParams, Backend, KVCache, KVType, Weight } from "./backend.ts";
import { type ModelConfig, ModelConfigError, readModelConfig } from "./config.ts";
import { type LayerTensors, ModelTensors } from "./tensors.ts";

/**
 * Where a model's tensor bytes come from: a whole file in memory, or a reader of single tensors.
 * Given `into` (exactly tensor.nBytes long), a reader may read the bytes straight into it and
 * return it, so that a backend's own memory is the only copy.
 */
export type TensorBytes = (tensor: GGUFTensorInfo, into?: Uint8Array) => Uint8Array;

type LayerWeights = LayerTensors<Weight, Float32Array>;

export interface ForwardOptions {
  /** Return the logits of every token (nTokens × nVocab) instead of only the last one's. */
  allLogits?: boolean;
}

/** One sequence's share of a batched step. */
export interface BatchItem {
  cache: KVCache;
  tokens: ArrayLike<number>;
  /** Return the logits of every token of this sequence, not only the last one's. */
  allLogits?: boolean;
}

/**
 * One sequence's share of a step of a layer range (a pipeline shard): its cache holds only the
 * range's layers, and the tokens arrive as hidden states rather than ids.
 */
export interface StageItem {
  cache: KVCache;
  nTokens: number;
  /** On the last range: return the logits of every token of this sequence, not only the last one's. */
  allLogits?: boolean;
}

/** Layers [first, end) of a model: what one pipeline shard loads and runs. */
export interface LayerRange {
  first: number;
  end: number;
}

export interface CacheOptions {
  /** Positions to reserve; defaults to the model's training context. */
  nCtx?: number;
  kvType?: KVType;
  /** Allocate the cache a page at a time as it fills (KVCacheShape.paged). */
  paged?: boolean;
}

export class Model {
  readonly attention: AttentionParams;
  private readonly temporaries = new Map<string, Float32Array>();

  private constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
    /** The layers this instance holds; all of them unless it is a pipeline shard. */
    readonly range: LayerRange,
    private readonly tokenEmbd: Weight | undefined,
    private readonly layers: LayerWeights[],
    private readonly outputNorm: Float32Array | undefined,
    private readonly output: Weight | undefined,
  ) {
    this.attention = { nHead: config.nHead, nHeadKv: config.nHeadKv, headDim: config.headDim, scale: 1 / Math.sqrt(config.headDim) };
  }

  /**
   * Loads a model's weights into `backend`. Matrices stay in their GGUF block format. With a
   * `range`, only those layers load, plus the token embeddings on the first range and the output
   * norm and head on the last (a tied head reuses the embeddings, so the last range loads them too).
   */
  static load(header: GGUFHeader, bytesOf: TensorBytes, backend: Backend, range?: LayerRange): Model {
    const config = readModelConfig(header);
    const { first, end } = range ?? { first: 0, end: config.nLayer };
    if (!Number.isInteger(first) || !Number.isInteger(end) || first < 0 || end <= first || end > config.nLayer) {
      throw new RangeError(`layer range [${first}, ${end}) is not within the model's ${config.nLayer} layers`);
    }
    const tensors = new ModelTensors<Weight, Float32Array>(header, config, {
      matrix: (t, rows, cols) => {
        const name = t.name;
        if (!backend.loadWeightFrom) return backend.loadWeight({ name, type: t.type, rows, cols, bytes: bytesOf(t) });
        return backend.loadWeightFrom({ name, type: t.type, rows, cols }, (dst) => {
          const bytes = bytesOf(t, dst);
          if (bytes.length !== dst.length) throw new ModelConfigError(`tensor ${name}: expected ${dst.length} bytes, got ${bytes.length}`);
          if (bytes !== dst) dst.set(bytes);
        });
      },
      vector: (t, n) => {
        const out = new Float32Array(n);
        dequantize(t.type, bytesOf(t), out);
        return out;
      },
    });
    const { matrix, vector } = tensors;
    const { nEmbd, nVocab } = config;
    const layers: LayerWeights[] = [];
    for (let l = first; l < end; l++) layers.push(tensors.layer(l));
    const last = end === config.nLayer;
    const tokenEmbd = first === 0 || (last && config.tiedOutput) ? matrix("token_embd.weight", nEmbd, nVocab) : undefined;
    const output = !last ? undefined : config.tiedOutput ? tokenEmbd : matrix("output.weight", nEmbd, nVocab);
    return new Model(config, backend, { first, end }, tokenEmbd, layers, last ? vector("output_norm.weight", nEmbd) : undefined, output);
  }

  /** Whether this instance runs the whole model (not a pipeline shard). */
  get whole(): boolean {
    return this.range.first === 0 && this.range.end === this.config.nLayer;
  }

  /** A KV-cache for one new sequence. */
  createCache(opts: CacheOptions = {}): KVCache {
    const nCtx = opts.nCtx ?? this.config.nCtxTrain;
    if (!Number.isInteger(nCtx) || nCtx <= 0) throw new RangeError(`context size must be a positive integer, got ${nCtx}`);
    const { nHeadKv, headDim } = this.config;
    return this.backend.createKVCache({ nLayers: this.layers.length, nCtx, kvDim: nHeadKv * headDim, type: opts.kvType ?? "f32", paged: opts.paged });
  }

  /**
   * Runs `tokens` through the model after what `cache` already holds, appends their K/V to the
   * cache, and returns the logits of the last token (or of every token with allLogits).
   */
  forward(cache: KVCache, tokens: ArrayLike<number>, opts: ForwardOptions = {}): Float32Array {
    return this.forwardBatch([{ cache, tokens, allLogits: opts.allLogits }])[0]!;
  }

  /**
   * One step for several sequences at once: their tokens go through every matmul together, so
   * each weight is read once per step for the whole batch; attention stays per sequence.
   * Returns each sequence's logits in order.
   */
  forwardBatch(batch: readonly BatchItem[]): Float32Array[] {
    if (batch.length === 0) return [];
    if (!this.whole) throw new RangeError(`this model holds layers [${this.range.first}, ${this.range.end}) only: run it stage by stage`);
    const stage = batch.map((b) => ({ cache: b.cache, nTokens: b.tokens.length, allLogits: b.allLogits }));
    const x = this.embed(batch.flatMap((b) => Array.from(b.tokens)));
    this.forwardLayers(stage, x);
    return this.logits(stage, x);
  }

  /**
   * Runs this instance's layers over the residual stream x (every item's tokens × nEmbd, in
   * batch order), in place, and appends the items' K/V to their caches. A pipeline shard's step.
   */
  forwardLayers(batch: readonly StageItem[], x: Float32Array): void {
    checkStage(batch);
    const total = batch.reduce((n, b) => n + b.nTokens, 0);
    if (x.length !== total * this.config.nEmbd) throw new RangeError(`hidden states hold ${x.length} values, expected ${total} tokens × ${this.config.nEmbd}`);
    const spans = batch.map((b) => ({ cache: b.cache, positions: Int32Array.from({ length: b.nTokens }, (_, t) => b.cache.length + t) }));
    for (let l = this.range.first; l < this.range.end; l++) this.layer(l, x, spans);
    for (const b of batch) this.backend.commit(b.cache, b.nTokens);
  }

  /** The logits of a stage's output x (last range only): each item's last token, or all of them with allLogits. */
  logits(batch: readonly StageItem[], x: Float32Array): Float32Array[] {
    // Only the rows whose logits are wanted go through the output head, in one matmul.
    const { nEmbd, nVocab } = this.config;
    const rows: number[] = [];
    let first = 0;
    for (const b of batch) {
      const n = b.nTokens;
      for (let t = b.allLogits ? 0 : n - 1; t < n; t++) rows.push(first + t);
      first += n;
    }
    const picked = new Float32Array(rows.length * nEmbd);
    rows.forEach((r, i) => picked.set(x.subarray(r * nEmbd, (r + 1) * nEmbd), i * nEmbd));
    const logits = this.head(picked, rows.length);
    let at = 0;
    return batch.map((b) => {
      const n = b.allLogits ? b.nTokens : 1;
      const out = logits.subarray(at * nVocab, (at + n) * nVocab);
      at += n;
      return out;
    });
  }

  /** Token embeddings of a batch: nTokens × nEmbd. */
  embed(tokens: ArrayLike<number>): Float32Array {
    if (!this.tokenEmbd || this.range.first !== 0) throw new RangeError("only the first layer range embeds tokens");
    for (let t = 0; t < tokens.length; t++) {
      const id = tokens[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.config.nVocab) {
        throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.config.nVocab - 1})`);
      }
    }
    const x = new Float32Array(tokens.length * this.config.nEmbd);
    this.backend.getRows(x, this.tokenEmbd, tokens);
    return x;
  }

  /**
   * A temporary of `length` floats for one operation of a layer or the head, reused by every layer
   * and step (a forward pass runs to its end before the next starts): steps then leave no garbage,
   * which in V8 piles up off-heap, up to tens of MB, before a collection frees it. Each keeps the
   * size of the largest batch seen; the contents are stale, and every operation overwrites them.
   */
  private temporary(name: string, length: number): Float32Array {
    let buffer = this.temporaries.get(name);
    if (!buffer || buffer.length < length) this.temporaries.set(name, (buffer = new Float32Array(length)));
    return buffer.subarray(0, length);
  }

  /** One transformer block, updating the residual stream x (all sequences' tokens × nEmbd) in place. */
  layer(l: number, x: Float32Array, batch: readonly { cache: KVCache; positions: Int32Array }[]): void {
    const { backend, config } = this;
    const w = this.layers[l - this.range.first];
    if (!w) throw new RangeError(`layer ${l} is not in this model's range [${this.range.first}, ${this.range.end})`);
    const n = x.length / config.nEmbd;
    const { nEmbd, nHead, nHeadKv, headDim, nFf, rmsEps, rope } = config;
    const qDim = nHead * headDim;
    const kvDim = nHeadKv * headDim;
    const positions = new Int32Array(n);
    let first = 0;
    for (const b of batch) {
      positions.set(b.positions, first);
      first += b.positions.length;
    }

    // Attention block: x += Wo · attention(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x))
    const xb = this.temporary("xb", n * nEmbd);
    backend.rmsNorm(xb, x, w.attnNorm, n, rmsEps);
    const q = this.temporary("q", n * qDim);
    const k = this.temporary("k", n * kvDim);
    const v = this.temporary("v", n * kvDim);
    backend.matmul(q, w.wq, xb, n);
    backend.matmul(k, w.wk, xb, n);
    backend.matmul(v, w.wv, xb, n);
    if (w.bq) addRowVector(q, w.bq);
    if (w.bk) addRowVector(k, w.bk);
    if (w.bv) addRowVector(v, w.bv);
    backend.rope(q, n, nHead, headDim, positions, rope);
    backend.rope(k, n, nHeadKv, headDim, positions, rope);
    const att = this.temporary("att", q.length);
    first = 0;
    for (const b of batch) {
      const m = b.positions.length;
      const rows = (a: Float32Array, width: number) => a.subarray(first * width, (first + m) * width);
      backend.attention(rows(att, qDim), rows(q, qDim), rows(k, kvDim), rows(v, kvDim), b.cache, l - this.range.first, m, this.attention);
      first += m;
    }
    backend.matmul(xb, w.wo, att, n);
    addInPlace(x, xb);

    // Feed-forward block (SwiGLU): x += Wdown · (silu(Wgate·norm(x)) ⊙ Wup·norm(x))
    backend.rmsNorm(xb, x, w.ffnNorm, n, rmsEps);
    const gate = this.temporary("gate", n * nFf);
    const up = this.temporary("up", n * nFf);
    backend.matmul(gate, w.wGate, xb, n);
    backend.matmul(up, w.wUp, xb, n);
    backend.swiglu(gate, gate, up, n * nFf);
    backend.matmul(xb, w.wDown, gate, n);
    addInPlace(x, xb);
  }

  /** Final norm and output projection of nTokens rows of the residual stream. */
  head(x: Float32Array, nTokens: number): Float32Array {
    if (!this.outputNorm || !this.output) throw new RangeError("only the last layer range has the output head");
    const xn = this.temporary("xn", nTokens * this.config.nEmbd);
    this.backend.rmsNorm(xn, x, this.outputNorm, nTokens, this.config.rmsEps);
    const logits = new Float32Array(nTokens * this.config.nVocab);
    this.backend.matmul(logits, this.output, xn, nTokens);
    return logits;
  }
}

/** Every sequence once, at least one token each, within its cache's context. */
function checkStage(batch: readonly StageItem[]): void {
  if (new Set(batch.map((b) => b.cache)).size !== batch.length) throw new RangeError("a sequence may appear only once in a batch");
  for (const { cache, nTokens } of batch) {
    if (!Number.isInteger(nTokens) || nTokens <= 0) throw new RangeError("forward needs at least one token");
    if (cache.length + nTokens > cache.shape.nCtx) {
      throw new RangeError(`context overflow: ${cache.length} cached + ${nTokens} new tokens > context size ${cache.shape.nCtx}`);
    }
  }
}

function addInPlace(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i]!;
}

/** Adds a bias vector to every row. */
function addRowVector(x: Float32Array, bias: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += bias[i % bias.length]!;
}

/** Loads a model from a GGUF file held in memory; weights are views of the file, not copies. */
export function loadModel(file: GGUFFile, backend: Backend): Model {
  return Model.load(file, (t) => file.bytes.subarray(t.fileOffset, t.fileOffset + t.nBytes), backend);
}
