import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { parseGGUF } from "../../kernels/gguf/reader.ts";
import { createJsBackend } from "../../kernels/model/backends/js.ts";
import { loadModel } from "../../kernels/model/model.ts";
import { REFERENCE_DIR, checkRun, isQuantized, type ReferenceFile, runFixture } from "./parity.ts";

/**
 * One test per fixture model on the reference backend. It keeps float activations, so quantized
 * files are held to the float64 reference (dequantized weights) and F32/F16 files to llama.cpp
 * itself, both at t = 1e-2·std.
 */
export function jsParityTests(files: ReferenceFile[]): void {
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
}

/** K-quant files (the slow dequantizers) go to their own test file so the two run in parallel. */
export const isKQuant = (f: ReferenceFile) => /Q\d_K/.test(f.model);
