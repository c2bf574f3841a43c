import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { loadModel } from "../kernels/model/model.ts";
import { createWasmBackend } from "../kernels/wasm/backend.ts";
import { REFERENCE_DIR, checkRun, isQuantized, referenceFiles, runFixture } from "./helpers/parity.ts";

// The wasm backend quantizes activations to Q8 blocks as llama.cpp does, so every file is held
// to llama.cpp's own logits: t = 0.15·std for quantized files, 1e-2·std for F32/F16 (README rule).
describe("wasm backend matches llama.cpp on every fixture", () => {
  const files = referenceFiles();
  it("has all the fixtures", () => {
    expect(files.map((f) => f.model)).toHaveLength(15);
  });
  for (const ref of files) {
    it(ref.model, async () => {
      const model = loadModel(parseGGUF(new Uint8Array(readFileSync(join(REFERENCE_DIR, ref.model)))), await createWasmBackend());
      expect(ref.runs).toHaveLength(2);
      for (const run of ref.runs) {
        const out = runFixture(model, run);
        expect(checkRun(run, out, "llama", isQuantized(ref.model) ? 0.15 : 1e-2)).toBeNull();
      }
    });
  }
});
