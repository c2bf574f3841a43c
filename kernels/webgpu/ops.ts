/// <reference types="@webgpu/types" />
/**
 * The forward pass's operations, each bound once to its buffers (weights, activations, step
 * uniform) so that a step only records dispatches: no bind group is created per token.
 * `encode(pass, n)` records the operation for n rows (the step's tokens, or the output head's).
 * This file: the operations that read weight matrices; ops-activation.ts and ops-cache.ts the rest.
 */
import { typeName } from "../gguf/types.ts";
import { flatGroups, uniform } from "./buffers.ts";
import type { Binding, Pipelines } from "./pipelines.ts";
import type { GpuMatrix } from "./weights.ts";
import { FLAT_WORKGROUP } from "./wgsl/common.ts";
import { embedWgsl } from "./wgsl/embed.ts";
import { MATMAT_TILE, MATVEC_WORKGROUP, matmulWgsl } from "./wgsl/matmul.ts";

export interface Op {
  encode(pass: GPUComputePassEncoder, n: number): void;
}

export interface OpContext {
  device: GPUDevice;
  pipelines: Pipelines;
  /** Prefill weight tiles in f16 (the device has shader-f16 and the caller wants it). */
  f16: boolean;
  /** Bound where a matmul has no bias (never read then). */
  noBias: GPUBuffer;
  /** Threads per weight row in matvec (see wgsl/matmul.ts). */
  matvecTeam: number;
}

/** Steps of at most this many tokens use the matrix × vector kernel. */
const MATVEC_MAX_TOKENS = 8;

const MATMUL: Binding[] = ["read", "read", "write", "read", "uniform", "uniform"];

export function dispatchFlat(pass: GPUComputePassEncoder, invocations: number): void {
  pass.dispatchWorkgroups(...flatGroups(Math.ceil(invocations / FLAT_WORKGROUP)));
}

/** out[t][r] (+)= Σ_c W[r][c] · x[t][c] (+ bias[r]) for the step's tokens. */
export async function matmulOp(
  ctx: OpContext,
  w: GpuMatrix,
  x: GPUBuffer,
  out: GPUBuffer,
  step: GPUBuffer,
  opts: { accumulate?: boolean; bias?: GPUBuffer } = {},
): Promise<Op> {
  const type = typeName(w.type);
  const team = ctx.matvecTeam;
  const matvec = (maxTokens: number) =>
    ctx.pipelines.pipeline(`matvec${maxTokens}-team${team}-${type}`, MATMUL, () => matmulWgsl(w.type, { kind: "matvec", maxTokens, team }));
  const rowsPerGroup = MATVEC_WORKGROUP / team;
  const [one, few, many] = await Promise.all([
    matvec(1),
    matvec(MATVEC_MAX_TOKENS),
    ctx.pipelines.pipeline(`matmat-${ctx.f16 ? "f16" : "f32"}-${type}`, MATMUL, () => matmulWgsl(w.type, { kind: "matmat", f16: ctx.f16 })),
  ]);
  const ranges = w.ranges.map((r) => {
    const params = uniform(ctx.device, `${w.name} params`, [r.rows, w.cols, w.rowBytes, r.rowOffset, w.rows, opts.accumulate ? 1 : 0, opts.bias ? 1 : 0]);
    return { rows: r.rows, group: ctx.pipelines.bindGroup(MATMUL, [r.buffer, x, out, opts.bias ?? ctx.noBias, step, params], w.name) };
  });
  return {
    encode(pass, n) {
      const useMatvec = n <= MATVEC_MAX_TOKENS;
      pass.setPipeline(n === 1 ? one : useMatvec ? few : many);
      for (const r of ranges) {
        pass.setBindGroup(0, r.group);
        if (useMatvec) pass.dispatchWorkgroups(...flatGroups(Math.ceil(r.rows / rowsPerGroup)));
        else pass.dispatchWorkgroups(Math.ceil(r.rows / MATMAT_TILE), Math.ceil(n / MATMAT_TILE));
      }
    },
  };
}

const EMBED: Binding[] = ["read", "read", "write", "uniform", "uniform"];

/** out[t] = row ids[t] of the token matrix, as float32. */
export async function embedOp(ctx: OpContext, w: GpuMatrix, ids: GPUBuffer, out: GPUBuffer, step: GPUBuffer): Promise<Op> {
  const pipeline = await ctx.pipelines.pipeline(`embed-${typeName(w.type)}`, EMBED, () => embedWgsl(w.type));
  const groups = w.ranges.map((r) =>
    ctx.pipelines.bindGroup(EMBED, [r.buffer, ids, out, step, uniform(ctx.device, `${w.name} rows`, [r.rows, w.cols, w.rowBytes, r.rowOffset])]),
  );
  return {
    encode(pass, n) {
      pass.setPipeline(pipeline);
      for (const group of groups) {
        pass.setBindGroup(0, group);
        dispatchFlat(pass, (n * w.cols) / 4);
      }
    },
  };
}
