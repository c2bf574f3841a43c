/** Node helpers: the shipped model's bytes and an onnxruntime-web classifier for it. */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { OnnxClassifier, type OrtLike, type OrtWasmOptions } from "../../kernels/moderation/classifier.ts";

export const SHIPPED_MODEL_PATH = fileURLToPath(new URL("../../models/moderation/classifier.onnx", import.meta.url));

export function shippedModelBytes(): Uint8Array {
  return new Uint8Array(readFileSync(SHIPPED_MODEL_PATH));
}

/** The path of ORT's wasm runtime (the file the worker bundles as a CompiledWasm module). */
export function ortWasmPath(): string {
  return createRequire(import.meta.url).resolve("onnxruntime-web/ort-wasm-simd-threaded.wasm");
}

export async function loadOrt(): Promise<OrtLike> {
  return (await import("onnxruntime-web")) as unknown as OrtLike;
}

/** The shipped classifier run by onnxruntime-web (wasm EP, one thread). */
export async function loadShippedClassifier(opts: OrtWasmOptions & { model?: Uint8Array } = {}): Promise<OnnxClassifier> {
  return OnnxClassifier.create({ ort: await loadOrt(), model: opts.model ?? shippedModelBytes(), wasmModule: opts.wasmModule, wasmBinary: opts.wasmBinary });
}
