import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { type WebGpuDevice, requestWebGpuDevice } from "../kernels/webgpu/device.ts";
import { loadWebGpuModel } from "../kernels/webgpu/model.ts";
import { runFixtureOnGpu } from "./browser/fixture-run.ts";
import { REFERENCE_DIR, checkRun, isQuantized, referenceFiles } from "./helpers/parity.ts";

// The shader-f16 path: prompt matmuls hold their weight tiles in f16 (activations and arithmetic
// stay f32; wgsl/matmul.ts says why). It runs on lavapipe through Dawn's Vulkan backend (Mesa ≥ 25
// offers shader-f16; .ci/webgpu-packages.txt) and is held to the same rule as the f32 kernels:
// quantized files against the float64 reference, F32/F16 against llama.cpp, t = 1e-2·std
// (measured: at most 6.4e-3·std on these fixtures).
describe("webgpu model, f16 weight tiles, matches the fixtures", () => {
  let gpu: WebGpuDevice;
  beforeAll(async () => {
    gpu = await requestWebGpuDevice({ dawnBackends: ["vulkan"], precision: "f16" });
  });
  afterAll(() => gpu?.destroy());

  it("runs on an adapter with shader-f16", () => {
    expect(gpu.precision).toBe("f16");
  });

  for (const ref of referenceFiles()) {
    it(ref.model, async () => {
      const model = await loadWebGpuModel(parseGGUF(new Uint8Array(readFileSync(join(REFERENCE_DIR, ref.model)))), gpu);
      try {
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
