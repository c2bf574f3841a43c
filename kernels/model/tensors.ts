/**
 * A Llama-family model's tensors by llama.cpp's names and shapes, found and shape-checked in one
 * place for every loader: the loader says what a matrix (kept in its GGUF blocks) and a vector
 * (norm weights, biases) become — backend weights and Float32Arrays for the CPU Model
 * (model.ts), GPU buffers for the WebGPU runner (kernels/webgpu/model-weights.ts).
 */
import type { GGUFHeader, GGUFTensorInfo } from "../gguf/types.ts";
import { type ModelConfig, ModelConfigError } from "./config.ts";

export interface TensorLoader<M, V> {
  matrix(tensor: GGUFTensorInfo, rows: number, cols: number): M;
  vector(tensor: GGUFTensorInfo, n: number): V;
}

/** One transformer block's tensors. */
export interface LayerTensors<M, V> {
  attnNorm: V;
  wq: M;
  wk: M;
  wv: M;
  bq?: V;
  bk?: V;
  bv?: V;
  wo: M;
  ffnNorm: V;
  wGate: M;
  wUp: M;
  wDown: M;
}

export class ModelTensors<M, V> {
  private readonly byName: Map<string, GGUFTensorInfo>;

  constructor(
    header: GGUFHeader,
    private readonly config: ModelConfig,
    private readonly loader: TensorLoader<M, V>,
  ) {
    this.byName = new Map(header.tensors.map((t) => [t.name, t]));
  }

  /** The tensor `name`, which must have `dims` (GGUF order: the row length first). */
  info(name: string, dims: number[]): GGUFTensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new ModelConfigError(`missing tensor ${name}`);
    const actual = t.dims.join("×");
    if (actual !== dims.join("×")) throw new ModelConfigError(`tensor ${name} has shape ${actual}, expected ${dims.join("×")}`);
    return t;
  }

  // Arrow properties, so that callers may take them apart: const { matrix, vector } = tensors.
  readonly matrix = (name: string, cols: number, rows: number): M => this.loader.matrix(this.info(name, [cols, rows]), rows, cols);
  readonly vector = (name: string, n: number): V => this.loader.vector(this.info(name, [n]), n);
  readonly optionalVector = (name: string, n: number): V | undefined => (this.byName.has(name) ? this.vector(name, n) : undefined);

  /** Block l's tensors. */
  layer(l: number): LayerTensors<M, V> {
    const { nEmbd, nHead, nHeadKv, headDim, nFf } = this.config;
    const { matrix, vector, optionalVector } = this;
    const qDim = nHead * headDim;
    const kvDim = nHeadKv * headDim;
    const p = `blk.${l}.`;
    return {
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
    };
  }
}
