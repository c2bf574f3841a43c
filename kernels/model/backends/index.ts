/** Backend selection by name: `wasm` (SIMD128 kernels) where WebAssembly SIMD exists, `js` as fallback and reference. */
import type { Backend } from "../backend.ts";
import { createJsBackend } from "./js.ts";

export const BACKEND_NAMES = ["js", "wasm"] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export function isBackendName(name: string): name is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(name);
}

export async function createBackend(name: BackendName, opts: { threads?: number } = {}): Promise<Backend> {
  if (name === "js") return createJsBackend();
  const { createWasmBackend } = await import("../../wasm/backend.ts");
  return createWasmBackend(opts);
}
