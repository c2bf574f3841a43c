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

/** Where a model's tensor bytes come from: a whole file in memory, or a reader of single tensors. */
export type TensorBytes = (tensor: GGUFTensorInfo) => Uint8Array;

interface LayerWeights {
  attnNorm: Float32Array;
  wq: Weight;
  wk: Weight;
  wv: Weight;
  bq?: Float32Array;
  bk?: Float32Array;
  bv?: Float32Array;
  wo: Weight;
  ffnNorm: Float32Array;
  wGate: Weight;
  wUp: Weight;
  wDown: Weight;
}

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

export interface CacheOptions {
  /** Positions to reserve; defaults to the model's training context. */
  nCtx?: number;
  kvType?: KVType;
}

export class Model {
  readonly attention: AttentionParams;

  private constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
    private readonly tokenEmbd: Weight,
    private readonly layers: LayerWeights[],
    private readonly outputNorm: Float32Array,
    private readonly output: Weight,
  ) {
    this.attention = { nHead: config.nHead, nHeadKv: config.nHeadKv, headDim: config.headDim, scale: 1 / Math.sqrt(config.headDim) };
  }

  /** Loads a model's weights into `backend`. Matrices stay in their GGUF block format. */
  static load(header: GGUFHeader, bytesOf: TensorBytes, backend: Backend): Model {
    const config = readModelConfig(header);
    const byName = new Map(header.tensors.map((t) => [t.name, t]));
    const info = (name: string, dims: number[]) => {
      const t = byName.get(name);
      if (!t) throw new ModelConfigError(`missing tensor ${name}`);
      const actual = t.dims.join("×");
      if (actual !== dims.join("×")) throw new ModelConfigError(`tensor ${name} has shape ${actual}, expected ${dims.join("×")}`);
      return t;
    };
    const matrix = (name: string, cols: number, rows: number): Weight => {
      const t = info(name, [cols, rows]);
      return backend.loadWeight({ name, type: t.type, rows, cols, bytes: bytesOf(t) });
    };
    const vector = (name: string, n: number): Float32Array => {
      const t = info(name, [n]);
      const out = new Float32Array(n);
      dequantize(t.type, bytesOf(t), out);
      return out;
    };
    const optionalVector = (name: string, n: number) => (byName.has(name) ? vector(name, n) : undefined);

    const { nEmbd, nHead, nHeadKv, headDim, nFf, nVocab } = config;
    const qDim = nHead * headDim;
    const kvDim = nHeadKv * headDim;
    const layers: LayerWeights[] = [];
    for (let l = 0; l < config.nLayer; l++) {
      const p = `blk.${l}.`;
      layers.push({
        attnNorm: vector(`${p}attn_norm.weight`, nEmbd),
        wq: matrix(`${p}attn_q.weight`, nEmbd, qDim),
        wk: matrix(`${p}attn_k.weight`, nEmbd, kvDim),
        wv: matrix(`${p}attn_v.weight`, nEmbd, kvDim),
        bq: optionalVector(`${p}attn_q.bias`, qDim),
        bk: optionalVector(`${p}attn_k.bias`, kvDim),
        bv: optionalVector(`${p}attn_v.bias`, kvDim),
        wo: matrix(`${p}attn_output.weight`, qDim, nEmbd),
        ffnNorm: vector(`${p}ffn_norm.weight`, nEmbd),
        wGate: matrix(`${p}ffn_gate.weight`, nEmbd, nFf),
        wUp: matrix(`${p}ffn_up.weight`, nEmbd, nFf),
        wDown: matrix(`${p}ffn_down.weight`, nFf, nEmbd),
      });
    }
    const tokenEmbd = matrix("token_embd.weight", nEmbd, nVocab);
    const output = config.tiedOutput ? tokenEmbd : matrix("output.weight", nEmbd, nVocab);
    return new Model(config, backend, tokenEmbd, layers, vector("output_norm.weight", nEmbd), output);
  }

  /** A KV-cache for one new sequence. */
  createCache(opts: CacheOptions = {}): KVCache {
    const nCtx = opts.nCtx ?? this.config.nCtxTrain;
    if (!Number.isInteger(nCtx) || nCtx <= 0) throw new RangeError(`context size must be a positive integer, got ${nCtx}`);
    const { nLayer, nHeadKv, headDim } = this.config;
    return this.backend.createKVCache({ nLayers: nLayer, nCtx, kvDim: nHeadKv * headDim, type: opts.kvType ?? "f32" });
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
    if (new Set(batch.map((b) => b.cache)).size !== batch.length) throw new RangeError("a sequence may appear only once in a batch");
    for (const { cache, tokens } of batch) {
      if (tokens.length === 0) throw new RangeError("forward needs at least one token");
      if (cache.length + tokens.length > cache.shape.nCtx) {
        throw new RangeError(`context overflow: ${cache.length} cached + ${tokens.length} new tokens > context size ${cache.shape.nCtx}`);
      }
    }
    const spans = batch.map((b) => ({ ...b, positions: Int32Array.from({ length: b.tokens.length }, (_, t) => b.cache.length + t) }));
    const x = this.embed(spans.flatMap((b) => Array.from(b.tokens)));
    for (let l = 0; l < this.layers.length; l++) this.layer(l, x, spans);
    for (const b of batch) this.backend.commit(b.cache, b.tokens.length);

    // Only the rows whose logits are wanted go through the output head, in one matmul.
    const { nEmbd, nVocab } = this.config;
    const rows: number[] = [];
    let first = 0;
    for (const b of batch) {
      const n = b.tokens.length;
      for (let t = b.allLogits ? 0 : n - 1; t < n; t++) rows.push(first + t);
      first += n;
    }
    const picked = new Float32Array(rows.length * nEmbd);
    rows.forEach((r, i) => picked.set(x.subarray(r * nEmbd, (r + 1) * nEmbd), i * nEmbd));
    const logits = this.head(picked, rows.length);
    let at = 0;
    return batch.map((b) => {
      const n = b.allLogits ? b.tokens.length : 1;
      const out = logits.subarray(at * nVocab, (at + n) * nVocab);
      at += n;
      return out;
    });
  }

  /** Token embeddings of a batch: nTokens × nEmbd. */
  embed(tokens: ArrayLike<number>): Float32Array {
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

  /** One transformer block, updating the residual stream x (all sequences' tokens × nEmbd) in place. */
  layer(l: number, x: Float32Array, batch: readonly (BatchItem & { positions: Int32Array })[]): void {
    const { backend, config } = this;
    const w = this.layers[l]!;
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
    const xb = new Float32Array(n * nEmbd);
    backend.rmsNorm(xb, x, w.attnNorm, n, rmsEps);
    const q = new Float32Array(n * qDim);
    const k = new Float32Array(n * kvDim);
    const v = new Float32Array(n * kvDim);
    backend.matmul(q, w.wq, xb, n);
    backend.matmul(k, w.wk, xb, n);
    backend.matmul(v, w.wv, xb, n);
    if (w.bq) addRowVector(q, w.bq);
    if (w.bk) addRowVector(k, w.bk);
    if (w.bv) addRowVector(v, w.bv);
    backend.rope(q, n, nHead, headDim, positions, rope);
    backend.rope(k, n, nHeadKv, headDim, positions, rope);
    const att = new Float32Array(q.length);
    first = 0;
    for (const b of batch) {
      const m = b.positions.length;
      const rows = (a: Float32Array, width: number) => a.subarray(first * width, (first + m) * width);
      backend.attention(rows(att, qDim), rows(q, qDim), rows(k, kvDim), rows(v, kvDim), b.cache, l, m, this.attention);
      first += m;
    }
    backend.matmul(xb, w.wo, att, n);
    addInPlace(x, xb);

    // Feed-forward block (SwiGLU): x += Wdown · (silu(Wgate·norm(x)) ⊙ Wup·norm(x))
    backend.rmsNorm(xb, x, w.ffnNorm, n, rmsEps);
    const gate = new Float32Array(n * nFf);
    const up = new Float32Array(n * nFf);
    backend.matmul(gate, w.wGate, xb, n);
    backend.matmul(up, w.wUp, xb, n);
    backend.swiglu(gate, gate, up, n * nFf);
    backend.matmul(xb, w.wDown, gate, n);
    addInPlace(x, xb);
  }

  /** Final norm and output projection of nTokens rows of the residual stream. */
  head(x: Float32Array, nTokens: number): Float32Array {
    const xn = new Float32Array(nTokens * this.config.nEmbd);
    this.backend.rmsNorm(xn, x, this.outputNorm, nTokens, this.config.rmsEps);
    const logits = new Float32Array(nTokens * this.config.nVocab);
    this.backend.matmul(logits, this.output, xn, nTokens);
    return logits;
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
