/**
 * The compute backend a SessionDO runs its model on, chosen by the BACKEND var: `wasm` (the
 * SIMD128 kernels; workerd cannot compile wasm from bytes at run time, so petrel.wasm is bundled
 * as a compiled module) or `js` (the TypeScript reference). The API does not depend on which.
 */
import type { Backend } from "../kernels/model/backend.ts";
import { createJsBackend } from "../kernels/model/backends/js.ts";
import { createWasmBackendFromModule } from "../kernels/wasm/wasm-backend.ts";
import petrelWasm from "../kernels/wasm/build/petrel.wasm";

export const SERVING_BACKENDS = ["wasm", "js"] as const;
export type ServingBackend = (typeof SERVING_BACKENDS)[number];

export function servingBackend(name: string | undefined): ServingBackend {
  return name === "js" ? "js" : "wasm";
}

/** A fresh backend instance (one per loaded model: its weights live in it). */
export function createServingBackend(name: ServingBackend): Promise<Backend> {
  return name === "js" ? Promise.resolve(createJsBackend()) : createWasmBackendFromModule(petrelWasm);
}
