/**
 * The exports of petrel.wasm (built from assembly/), typed, and how to instantiate it on a given
 * memory. Pointers are byte offsets into that memory; booleans cross as 0/1.
 */
import { type WasmMemory, type WasmModule, wasmApi } from "./wasm-api.ts";

export interface Kernels {
  heapBase(): number;
  supportsType(type: number): number;
  activationBytes(type: number, cols: number): number;
  prepareActivations(type: number, x: number, nTokens: number, cols: number, act: number): number;
  /** scratch: MATMUL_SCRATCH_BYTES of the calling thread's own. */
  matmul(type: number, w: number, rowBytes: number, rowStart: number, rowEnd: number, cols: number, act: number, nTokens: number, out: number, outStride: number, scratch: number): void;
  rmsNorm(x: number, weight: number, out: number, nTokens: number, n: number, eps: number): void;
  ropeTable(positions: number, nTokens: number, nDims: number, freqBase: number, freqScale: number, table: number): void;
  rope(x: number, nTokens: number, nHeads: number, headDim: number, nDims: number, neox: number, table: number): void;
  swiglu(gate: number, up: number, out: number, n: number): void;
  storeKV(src: number, dst: number, n: number, f16: number): void;
  attentionScratchBytes(nPositions: number, headDim: number): number;
  attention(
    q: number, out: number, k: number, v: number, kvDim: number, f16: number, start: number, nTokens: number,
    nHead: number, nHeadKv: number, headDim: number, scale: number, scratch: number,
  ): void;
}

/** Bytes of the per-thread scratch `matmul` takes. */
export const MATMUL_SCRATCH_BYTES = 128;

/** Runs out[t·rows + r] = W[r] · act[t] for all rows of a weight (one thread, or split across several). */
export type MatmulRunner = (type: number, w: number, rowBytes: number, rows: number, cols: number, act: number, nTokens: number, out: number) => void;

export async function instantiateKernels(module: WasmModule, memory: WasmMemory): Promise<Kernels> {
  const instance = await wasmApi.instantiate(module, { env: { memory } });
  return instance.exports as unknown as Kernels;
}
