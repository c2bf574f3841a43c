/**
 * The loader path the worker uses in workerd, exercised in Node: ORT's wasm runtime handed over
 * as an already compiled WebAssembly.Module (workerd cannot compile wasm from bytes at run
 * time), ORT given a dummy binary, numThreads = 1. Kept in its own file: ORT initializes its
 * runtime once per process.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { OnnxClassifier, ReferenceClassifier, ortModuleInstantiations } from "../kernels/moderation/classifier.ts";
import { loadOrt, ortWasmPath, shippedModelBytes } from "../scripts/moderation/node.ts";
import { CATEGORIES } from "../kernels/moderation/taxonomy.ts";

/** the WebAssembly global (tsconfig has no DOM lib) */
const WA = (globalThis as unknown as { WebAssembly: { instantiate: unknown; compile(bytes: Uint8Array): Promise<WebAssembly.Module> } }).WebAssembly;

describe("OnnxClassifier with a precompiled ORT wasm module", () => {
  it("instantiates ORT from the given module, restores WebAssembly.instantiate, and scores like the reference", async () => {
    const original = WA.instantiate;
    const module = await WA.compile(readFileSync(ortWasmPath()));
    const ort = await loadOrt();
    const model = shippedModelBytes();
    // the .onnx bytes as an ArrayBuffer, as an R2 object's arrayBuffer() gives them
    const buffer = model.buffer.slice(model.byteOffset, model.byteOffset + model.byteLength);
    const clf = await OnnxClassifier.create({ ort, model: buffer as ArrayBuffer, wasmModule: module });
    expect(ortModuleInstantiations(ort)).toBe(1);
    expect(WA.instantiate).toBe(original);
    expect(ort.env.wasm.numThreads).toBe(1);

    const texts = ["Report me again and I will break your legs.", "What's a good recipe for lasagna?"];
    const [a, b] = [await clf.score(texts), await ReferenceClassifier.fromOnnx(model).score(texts)];
    for (let i = 0; i < texts.length; i++) for (const c of CATEGORIES) expect(Math.abs(a[i]![c] - b[i]![c])).toBeLessThan(2e-5);

    // a second session reuses the initialized runtime
    const again = await OnnxClassifier.create({ ort, model, wasmModule: module });
    expect(ortModuleInstantiations(ort)).toBe(1);
    expect((await again.score(["hi"]))[0]!.violence).toBeCloseTo((await clf.score(["hi"]))[0]!.violence, 6);
  });
});
