/// <reference types="@webgpu/types" />
/** Operations on a sequence's KV-cache: storing a step's K/V rows, and attention over them. */
import type { KVType } from "../model/backend.ts";
import { uniform } from "./buffers.ts";
import { type Op, type OpContext, dispatchFlat } from "./ops.ts";
import type { Binding } from "./pipelines.ts";
import { attentionWgsl, kvStoreWgsl } from "./wgsl/attention.ts";

const KV_STORE: Binding[] = ["read", "read", "write", "write", "uniform", "uniform"];
const ATTENTION: Binding[] = ["read", "read", "read", "write", "uniform", "uniform"];

export interface AttentionShape {
  nHead: number;
  nHeadKv: number;
  headDim: number;
  scale: number;
}

/** The two cache kernels of one cache type, compiled before any cache is made (so that making one is synchronous). */
export interface KvKernels {
  type: KVType;
  store: GPUComputePipeline;
  attend: GPUComputePipeline;
}

export async function kvKernels(ctx: OpContext, type: KVType): Promise<KvKernels> {
  const [store, attend] = await Promise.all([
    ctx.pipelines.pipeline(`kv-store-${type}`, KV_STORE, () => kvStoreWgsl(type)),
    ctx.pipelines.pipeline(`attention-${type}`, ATTENTION, () => attentionWgsl(type)),
  ]);
  return { type, store, attend };
}

/** Stores the step's K and V rows at positions pos0… of one layer's cache. */
export function kvStoreOp(ctx: OpContext, kernels: KvKernels, k: GPUBuffer, v: GPUBuffer, kCache: GPUBuffer, vCache: GPUBuffer, kvDim: number, step: GPUBuffer): Op {
  const group = ctx.pipelines.bindGroup(KV_STORE, [k, v, kCache, vCache, step, uniform(ctx.device, "kv", [kvDim])]);
  const perToken = kernels.type === "f16" ? kvDim / 2 : kvDim;
  return {
    encode(pass, n) {
      pass.setPipeline(kernels.store);
      pass.setBindGroup(0, group);
      dispatchFlat(pass, n * perToken);
    },
  };
}

/** out = causal softmax(q·Kᵀ·scale)·V over one layer's cache, per query head. */
export function attentionOp(ctx: OpContext, kernels: KvKernels, q: GPUBuffer, kCache: GPUBuffer, vCache: GPUBuffer, out: GPUBuffer, shape: AttentionShape, step: GPUBuffer): Op {
  const { nHead, nHeadKv, headDim, scale } = shape;
  const params = uniform(ctx.device, "attention", [nHead, nHead / nHeadKv, headDim, nHeadKv * headDim, { f32: scale }]);
  const group = ctx.pipelines.bindGroup(ATTENTION, [q, kCache, vCache, out, step, params]);
  return {
    encode(pass, n) {
      pass.setPipeline(kernels.attend);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(nHead, n);
    },
  };
}
