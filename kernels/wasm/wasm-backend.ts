/**
 * The WebAssembly SIMD backend: weights stay in their GGUF blocks in wasm linear memory (one
 * copy), activations are copied in and out per operation (they are small next to the weights),
 * and every operation runs in petrel.wasm. Matmuls quantize activations to Q8 blocks as ggml does,
 * so outputs match llama.cpp's CPU backend.
 */
import { rowBytes as rowBytesOf, typeName } from "../gguf/types.ts";
import type { AttentionParams, Backend, KVCache, KVCacheShape, RopeParams, Weight, WeightData } from "../model/backend.ts";
import { dequantize } from "../quant/dequantize.ts";
import { WasmHeap } from "./heap.ts";
import { type Kernels, MATMUL_SCRATCH_BYTES, type MatmulRunner, instantiateKernels } from "./kernels.ts";
import { WasmKVCache } from "./kv-cache.ts";
import { RopeTables } from "./rope-tables.ts";
import { Scratch } from "./scratch.ts";
import { type WasmModule, wasmApi } from "./wasm-api.ts";

interface WasmWeight extends Weight {
  readonly ptr: number;
  readonly rowBytes: number;
  /** Bytes of one token's activations as this weight's kernel reads them. */
  readonly actBytes: number;
}

export interface WasmBackend extends Backend {
  /** Size of the wasm linear memory (weights, KV-caches, scratch); it grows as needed and never shrinks. */
  readonly memoryBytes: number;
  /** Always present here: weights go straight into linear memory. */
  loadWeightFrom(shape: Omit<WeightData, "bytes">, fill: (dst: Uint8Array) => void): Weight;
  /** Stops the backend's matmul threads, if it has any; the backend is unusable afterwards. */
  close(): Promise<void>;
}

/** A single-threaded backend on a compiled petrel.wasm (in workerd, the module a bundler imported). */
export async function createWasmBackendFromModule(module: WasmModule): Promise<WasmBackend> {
  const memory = new wasmApi.Memory({ initial: 1 });
  const kernels = await instantiateKernels(module, memory);
  const heap = new WasmHeap(memory, kernels.heapBase());
  const scratch = heap.alloc(MATMUL_SCRATCH_BYTES);
  const matmul: MatmulRunner = (type, w, rowBytes, rows, cols, act, nTokens, out) =>
    kernels.matmul(type, w, rowBytes, 0, rows, cols, act, nTokens, out, rows, scratch);
  return new WasmBackendImpl(kernels, heap, matmul, async () => {});
}

/** A backend on kernels already instantiated on `heap`'s memory, with its own way of running matmuls. */
export function createWasmBackendOn(kernels: Kernels, heap: WasmHeap, matmul: MatmulRunner, close: () => Promise<void>): WasmBackend {
  return new WasmBackendImpl(kernels, heap, matmul, close);
}

class WasmBackendImpl implements WasmBackend {
  readonly name = "wasm";
  private readonly scratch: Scratch;
  private readonly ropeTables: RopeTables;

  constructor(
    private readonly kernels: Kernels,
    private readonly heap: WasmHeap,
    private readonly runMatmul: MatmulRunner,
    readonly close: () => Promise<void>,
  ) {
    this.scratch = new Scratch(heap);
    this.ropeTables = new RopeTables(kernels, heap);
  }

  get memoryBytes(): number {
    return this.heap.memoryBytes;
  }

  loadWeight(data: WeightData): Weight {
    return this.loadWeightFrom(data, (dst) => {
      if (data.bytes.length !== dst.length) throw new RangeError(`${data.name}: expected ${dst.length} bytes, got ${data.bytes.length}`);
      dst.set(data.bytes);
    });
  }

  loadWeightFrom(shape: Omit<WeightData, "bytes">, fill: (dst: Uint8Array) => void): Weight {
    const { name, type, rows, cols } = shape;
    if (!this.kernels.supportsType(type)) throw new RangeError(`${name}: the wasm backend has no kernel for ${typeName(type)}`);
    const rowBytes = rowBytesOf(type, cols);
    const ptr = this.heap.alloc(rows * rowBytes);
    try {
      fill(this.heap.u8.subarray(ptr, ptr + rows * rowBytes));
    } catch (e) {
      this.heap.release(ptr);
      throw e;
    }
    const weight: WasmWeight = { name, type, rows, cols, ptr, rowBytes, actBytes: this.kernels.activationBytes(type, cols) };
    return weight;
  }

  matmul(out: Float32Array, weight: Weight, x: Float32Array, nTokens: number): void {
    const w = weight as WasmWeight;
    const { rows, cols, type } = w;
    const k = this.kernels;
    const [xPtr, actPtr, outPtr] = this.scratch.carve(4 * nTokens * cols, nTokens * w.actBytes, 4 * nTokens * rows);
    this.heap.writeF32(xPtr!, x.subarray(0, nTokens * cols));
    const act = k.prepareActivations(type, xPtr!, nTokens, cols, actPtr!);
    this.runMatmul(type, w.ptr, w.rowBytes, rows, cols, act, nTokens, outPtr!);
    this.heap.readF32(outPtr!, out, nTokens * rows);
  }

  getRows(out: Float32Array, weight: Weight, ids: ArrayLike<number>): void {
    const w = weight as WasmWeight;
    const u8 = this.heap.u8;
    for (let t = 0; t < ids.length; t++) {
      const id = ids[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= w.rows) throw new RangeError(`token id ${id} is outside the vocabulary (0..${w.rows - 1})`);
      const at = w.ptr + id * w.rowBytes;
      dequantize(w.type, u8.subarray(at, at + w.rowBytes), out.subarray(t * w.cols, (t + 1) * w.cols));
    }
  }

  rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, nTokens: number, eps: number): void {
    const n = weight.length;
    const [xPtr, wPtr] = this.scratch.carve(4 * n * nTokens, 4 * n);
    this.heap.writeF32(xPtr!, x.subarray(0, n * nTokens));
    this.heap.writeF32(wPtr!, weight);
    this.kernels.rmsNorm(xPtr!, wPtr!, xPtr!, nTokens, n, eps);
    this.heap.readF32(xPtr!, out, n * nTokens);
  }

  rope(x: Float32Array, nTokens: number, nHeads: number, headDim: number, positions: Int32Array, p: RopeParams): void {
    const n = nTokens * nHeads * headDim;
    const table = this.ropeTables.table(positions.subarray(0, nTokens), p);
    const [xPtr] = this.scratch.carve(4 * n);
    this.heap.writeF32(xPtr!, x.subarray(0, n));
    this.kernels.rope(xPtr!, nTokens, nHeads, headDim, p.nDims, p.neox ? 1 : 0, table);
    this.heap.readF32(xPtr!, x, n);
  }

  swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    const [gPtr, uPtr] = this.scratch.carve(4 * n, 4 * n);
    this.heap.writeF32(gPtr!, gate.subarray(0, n));
    this.heap.writeF32(uPtr!, up.subarray(0, n));
    this.kernels.swiglu(gPtr!, uPtr!, gPtr!, n);
    this.heap.readF32(gPtr!, out, n);
  }

  createKVCache(shape: KVCacheShape): WasmKVCache {
    return new WasmKVCache(shape, this.heap);
  }

  attention(out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, kvCache: KVCache, layer: number, nTokens: number, p: AttentionParams): void {
    const cache = this.ownCache(kvCache);
    const { kvDim, nCtx } = cache.shape;
    const start = cache.length;
    if (start + nTokens > nCtx) throw new RangeError(`context full: ${start} + ${nTokens} tokens > ${nCtx}`);
    if (!Number.isInteger(layer) || layer < 0 || layer >= cache.shape.nLayers) throw new RangeError(`layer ${layer} is outside the cache`);
    cache.reserve(start + nTokens);
    const qLength = nTokens * p.nHead * p.headDim;
    const [qPtr, outPtr, kPtr, vPtr, scratchPtr] = this.scratch.carve(
      4 * qLength, 4 * qLength, 4 * nTokens * kvDim, 4 * nTokens * kvDim, this.kernels.attentionScratchBytes(start + nTokens, p.headDim),
    );
    this.heap.writeF32(qPtr!, q.subarray(0, qLength));
    this.heap.writeF32(kPtr!, k.subarray(0, nTokens * kvDim));
    this.heap.writeF32(vPtr!, v.subarray(0, nTokens * kvDim));
    const f16 = cache.shape.type === "f16" ? 1 : 0;
    const at = start * cache.rowBytes;
    this.kernels.storeKV(kPtr!, cache.k(layer) + at, nTokens * kvDim, f16);
    this.kernels.storeKV(vPtr!, cache.v(layer) + at, nTokens * kvDim, f16);
    this.kernels.attention(qPtr!, outPtr!, cache.k(layer), cache.v(layer), kvDim, f16, start, nTokens, p.nHead, p.nHeadKv, p.headDim, p.scale, scratchPtr!);
    this.heap.readF32(outPtr!, out, qLength);
  }

  commit(kvCache: KVCache, nTokens: number): void {
    const cache = this.ownCache(kvCache);
    if (cache.length + nTokens > cache.shape.nCtx) throw new RangeError(`cannot commit ${nTokens} positions past the context size ${cache.shape.nCtx}`);
    cache.length += nTokens;
  }

  private ownCache(cache: KVCache): WasmKVCache {
    if (!(cache instanceof WasmKVCache) || cache.heap !== this.heap) throw new TypeError("the wasm backend needs a KV-cache it created");
    return cache;
  }
}
