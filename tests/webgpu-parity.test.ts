import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { type WebGpuDevice, requestWebGpuDevice } from "../kernels/webgpu/device.ts";
import { loadWebGpuModel } from "../kernels/webgpu/model.ts";
import { runFixtureOnGpu } from "./browser/fixture-run.ts";
import { REFERENCE_DIR, checkRun, isQuantized, referenceFiles } from "./helpers/parity.ts";

// The f32 kernels keep float activations, so (README rule) quantized files are held to the
// float64 reference and F32/F16 files to llama.cpp, both at t = 1e-2·std. They run on Mesa's
// llvmpipe through Dawn's OpenGL backend: compatibility limits, no shader-f16 (the f16 path is
// webgpu-f16.test.ts). No adapter is an error, not a skip: .ci/webgpu-packages.txt provides one.
const files = referenceFiles();

describe("webgpu model (f32 kernels, compatibility limits) matches the fixtures", () => {
  let gpu: WebGpuDevice;
  beforeAll(async () => {
    gpu = await requestWebGpuDevice({ dawnBackends: ["opengl"], featureLevels: ["compatibility"], precision: "f32" });
  });
  afterAll(() => gpu?.destroy());

  it("has all the fixtures", () => {
    expect(files.map((f) => f.model)).toHaveLength(15);
  });

  for (const ref of files) {
    it(ref.model, async () => {
      const model = await loadWebGpuModel(parseGGUF(new Uint8Array(readFileSync(join(REFERENCE_DIR, ref.model)))), gpu);
      try {
        expect(ref.runs).toHaveLength(2);
        for (const run of ref.runs) {
          const out = await runFixtureOnGpu(model, run);
          expect(checkRun(run, out, isQuantized(ref.model) ? "f64" : "llama", 1e-2)).toBeNull();
        }
      } finally {
        model.destroy();
      }
    });
  }
});
