/// <reference types="@webgpu/types" />
/**
 * The per-step buffers of a model on the GPU, sized for `maxBatch` tokens: the residual stream
 * and every intermediate of a layer, the token ids, the step uniforms, and the logits with the
 * mappable buffer they are read back through (the only transfer to the host per step).
 */
import type { ModelConfig } from "../model/config.ts";
import { storage } from "./buffers.ts";
import { BufferUsage } from "./constants.ts";

export interface Activations {
  ids: GPUBuffer;
  /** Residual stream, maxBatch × nEmbd. */
  x: GPUBuffer;
  /** Normed residual (also the output head's input). */
  xb: GPUBuffer;
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  att: GPUBuffer;
  gate: GPUBuffer;
  up: GPUBuffer;
  logits: GPUBuffer;
  staging: GPUBuffer;
  /** Step uniform of the layers: { n_tokens, pos0, 0 }. */
  bodyStep: GPUBuffer;
  /** Step uniform of the output head: { rows wanted, pos0, first row wanted }. */
  headStep: GPUBuffer;
  /** Bound in place of a missing bias. */
  noBias: GPUBuffer;
}

/** The largest batch whose widest activation (usually the logits) fits one storage binding. */
export function maxBatchFor(config: ModelConfig, device: GPUDevice, requested: number): number {
  const widest = Math.max(config.nVocab, config.nFf, config.nHead * config.headDim, config.nEmbd) * 4;
  const fits = Math.floor(Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize) / widest);
  if (fits < 1) throw new RangeError(`one row of ${widest} bytes exceeds the device's storage binding size`);
  return Math.max(1, Math.min(requested, fits));
}

export function createActivations(device: GPUDevice, config: ModelConfig, maxBatch: number): Activations {
  const { nEmbd, nHead, nHeadKv, headDim, nFf, nVocab } = config;
  const rows = (label: string, width: number) => storage(device, label, maxBatch * width * 4);
  const stepUniform = (label: string) => device.createBuffer({ label, size: 16, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST });
  return {
    ids: rows("ids", 1),
    x: rows("x", nEmbd),
    xb: rows("xb", nEmbd),
    q: rows("q", nHead * headDim),
    k: rows("k", nHeadKv * headDim),
    v: rows("v", nHeadKv * headDim),
    att: rows("att", nHead * headDim),
    gate: rows("gate", nFf),
    up: rows("up", nFf),
    logits: rows("logits", nVocab),
    staging: device.createBuffer({ label: "logits readback", size: maxBatch * nVocab * 4, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST }),
    bodyStep: stepUniform("step"),
    headStep: stepUniform("head step"),
    noBias: storage(device, "no bias", 16),
  };
}

export function destroyActivations(a: Activations): void {
  for (const buffer of Object.values(a)) buffer.destroy();
}
