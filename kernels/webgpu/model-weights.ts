/// <reference types="@webgpu/types" />
/**
 * A model's tensors uploaded to the GPU, found and shape-checked as for the CPU forward pass
 * (kernels/model/tensors.ts): matrices stay GGUF blocks, norm weights and biases become float32
 * vectors.
 */
import type { GGUFHeader } from "../gguf/types.ts";
import type { ModelConfig } from "../model/config.ts";
import type { TensorBytes } from "../model/model.ts";
import { type LayerTensors, ModelTensors } from "../model/tensors.ts";
import { dequantize } from "../quant/dequantize.ts";
import { storageFromFloats } from "./buffers.ts";
import { type GpuMatrix, uploadMatrix } from "./weights.ts";

export type GpuLayerWeights = LayerTensors<GpuMatrix, GPUBuffer>;

export interface GpuModelWeights {
  tokenEmbd: GpuMatrix;
  layers: GpuLayerWeights[];
  outputNorm: GPUBuffer;
  /** The token embeddings themselves when the model ties them. */
  output: GpuMatrix;
  /** Bytes of GPU memory the weights take. */
  bytes: number;
}

export function uploadWeights(device: GPUDevice, header: GGUFHeader, bytesOf: TensorBytes, config: ModelConfig, maxRangeBytes?: number): GpuModelWeights {
  let bytes = 0;
  const tensors = new ModelTensors<GpuMatrix, GPUBuffer>(header, config, {
    matrix: (t, rows, cols) => {
      const m = uploadMatrix(device, t.name, t.type, rows, cols, bytesOf(t), maxRangeBytes);
      bytes += m.bytes;
      return m;
    },
    vector: (t, n) => {
      const values = new Float32Array(n);
      dequantize(t.type, bytesOf(t), values);
      bytes += values.byteLength;
      return storageFromFloats(device, t.name, values);
    },
  });
  const { nEmbd, nVocab } = config;
  const layers = Array.from({ length: config.nLayer }, (_, l) => tensors.layer(l));
  const tokenEmbd = tensors.matrix("token_embd.weight", nEmbd, nVocab);
  const output = config.tiedOutput ? tokenEmbd : tensors.matrix("output.weight", nEmbd, nVocab);
  return { tokenEmbd, layers, outputNorm: tensors.vector("output_norm.weight", nEmbd), output, bytes };
}

export function destroyWeights(w: GpuModelWeights): void {
  const matrices = [w.tokenEmbd, w.output, ...w.layers.flatMap((l) => [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown])];
  for (const m of matrices) for (const r of m.ranges) r.buffer.destroy();
  const vectors = [w.outputNorm, ...w.layers.flatMap((l) => [l.attnNorm, l.ffnNorm, l.bq, l.bk, l.bv])];
  for (const v of vectors) v?.destroy();
}
