import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { createJsBackend } from "../kernels/model/backends/js.ts";
import { loadModel } from "../kernels/model/model.ts";
import { REFERENCE_DIR, checkRun, isQuantized, referenceFiles, runFixture } from "./helpers/parity.ts";

// The reference backend keeps float activations, so quantized files are held to the float64
// reference (dequantized weights) and F32/F16 files to llama.cpp itself, both at t = 1e-2·std.
describe("js reference backend matches llama.cpp on every fixture", () => {
  const files = referenceFiles();
  it("has all the fixtures", () => {
    expect(files.map((f) => f.model)).toHaveLength(15);
  });
  for (const ref of files) {
    it(ref.model, () => {
      const model = loadModel(parseGGUF(new Uint8Array(readFileSync(join(REFERENCE_DIR, ref.model)))), createJsBackend());
      expect(ref.runs).toHaveLength(2);
      for (const run of ref.runs) {
        const out = runFixture(model, run);
        expect(checkRun(run, out, isQuantized(ref.model) ? "f64" : "llama", 1e-2)).toBeNull();
      }
    });
  }
});
