/**
 * The wasm backend's Node entry: reads the built modules from disk, and can split matmuls across
 * worker threads. In workerd, where wasm cannot be compiled from bytes at run time, import the
 * module instead (workerd.ts) and call createWasmBackendFromModule.
 */
import { WasmHeap } from "./heap.ts";
import { instantiateKernels } from "./kernels.ts";
import { startMatmulThreads } from "./threads.ts";
import { type WasmModule, wasmApi } from "./wasm-api.ts";
import { type WasmBackend, createWasmBackendFromModule, createWasmBackendOn } from "./wasm-backend.ts";

export { createWasmBackendFromModule } from "./wasm-backend.ts";
export type { WasmBackend } from "./wasm-backend.ts";

/** One thread: petrel.wasm on ordinary memory. Several: petrel-shared.wasm on shared memory. */
const MODULE_FILES = { single: "./build/petrel.wasm", shared: "./build/petrel-shared.wasm" } as const;
/** The shared build's declared maximum (64 Ki pages = 4 GiB, all of wasm32). */
const SHARED_MAX_PAGES = 65536;

const compiled = new Map<keyof typeof MODULE_FILES, Promise<WasmModule>>();

/** A built module, read and compiled once per process. */
export function loadWasmModule(kind: keyof typeof MODULE_FILES = "single"): Promise<WasmModule> {
  let module = compiled.get(kind);
  if (!module) {
    module = import("node:fs/promises").then(async (fs) => wasmApi.compile(await fs.readFile(new URL(MODULE_FILES[kind], import.meta.url))));
    compiled.set(kind, module);
  }
  return module;
}

export async function createWasmBackend(opts: { threads?: number } = {}): Promise<WasmBackend> {
  const threads = opts.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  if (threads === 1) return createWasmBackendFromModule(await loadWasmModule("single"));
  const module = await loadWasmModule("shared");
  const memory = new wasmApi.Memory({ initial: 1, maximum: SHARED_MAX_PAGES, shared: true });
  const kernels = await instantiateKernels(module, memory);
  const heap = new WasmHeap(memory, kernels.heapBase());
  const pool = await startMatmulThreads(module, memory, heap, kernels, threads);
  return createWasmBackendOn(kernels, heap, pool.run, pool.close);
}
