/// <reference types="@webgpu/types" />
/** Operations on activations alone: RMSNorm, RoPE, SwiGLU (see ops.ts for the contract). */
import { uniform } from "./buffers.ts";
import { type Op, type OpContext, dispatchFlat } from "./ops.ts";
import type { Binding } from "./pipelines.ts";
import { RMS_NORM_WGSL } from "./wgsl/norm.ts";
import { ROPE_WGSL } from "./wgsl/rope.ts";
import { SWIGLU_WGSL } from "./wgsl/swiglu.ts";

const NORM: Binding[] = ["read", "write", "read", "uniform", "uniform"];

/** out[t] = rmsnorm(x[step.first_row + t]) · weight, weight of `width` values. */
export async function rmsNormOp(ctx: OpContext, x: GPUBuffer, out: GPUBuffer, weight: GPUBuffer, width: number, eps: number, step: GPUBuffer): Promise<Op> {
  const pipeline = await ctx.pipelines.pipeline("rms-norm", NORM, () => RMS_NORM_WGSL);
  const group = ctx.pipelines.bindGroup(NORM, [x, out, weight, step, uniform(ctx.device, "norm", [width, { f32: eps }])]);
  return {
    encode(pass, n) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(n);
    },
  };
}

const ROPE: Binding[] = ["write", "read", "uniform", "uniform"];

export function ropeKernel(ctx: OpContext): Promise<GPUComputePipeline> {
  return ctx.pipelines.pipeline("rope", ROPE, () => ROPE_WGSL);
}

/** Rotates each head of x in place, angles from `table` (see rope-table.ts); synchronous so a
 *  cache with a longer context can rebind the table on the spot. */
export function ropeOp(ctx: OpContext, kernel: GPUComputePipeline, x: GPUBuffer, table: GPUBuffer, nHeads: number, headDim: number, nDims: number, neox: boolean, step: GPUBuffer): Op {
  const group = ctx.pipelines.bindGroup(ROPE, [x, table, step, uniform(ctx.device, "rope", [nHeads, headDim, nDims / 2, neox ? 1 : 0])]);
  return {
    encode(pass, n) {
      pass.setPipeline(kernel);
      pass.setBindGroup(0, group);
      dispatchFlat(pass, (n * nHeads * nDims) / 2);
    },
  };
}

const SWIGLU: Binding[] = ["write", "read", "uniform", "uniform"];

/** gate = silu(gate) · up, rows of `width`. */
export async function swigluOp(ctx: OpContext, gate: GPUBuffer, up: GPUBuffer, width: number, step: GPUBuffer): Promise<Op> {
  const pipeline = await ctx.pipelines.pipeline("swiglu", SWIGLU, () => SWIGLU_WGSL);
  const group = ctx.pipelines.bindGroup(SWIGLU, [gate, up, step, uniform(ctx.device, "swiglu", [width])]);
  return {
    encode(pass, n) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      dispatchFlat(pass, n * width);
    },
  };
}
