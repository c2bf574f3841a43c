import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { GGMLType, rowBytes, typeName } from "../kernels/gguf/types.ts";
import { loadModel } from "../kernels/model/model.ts";
import { createWasmBackend } from "../kernels/wasm/backend.ts";
import { REFERENCE_DIR } from "./helpers/parity.ts";
import { activations, seeded, weights } from "./wasm-reference/random.ts";

// Threads split a matmul's rows; each output is still computed by the same kernel, so the
// results must equal the single-threaded ones exactly.
describe("wasm backend with worker threads", () => {
  it("splits every weight type's matmuls without changing a bit", async () => {
    const backends = await Promise.all([1, 2, 3].map((threads) => createWasmBackend({ threads })));
    try {
      for (const type of [GGMLType.F32, GGMLType.F16, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q8_0, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K]) {
        const random = seeded(type);
        const rows = 45, cols = 256, nTokens = 3;
        const bytes = weights(random, type, rows, cols, "quantized");
        expect(bytes.length).toBe(rows * rowBytes(type, cols));
        const x = activations(random, nTokens * cols);
        const outs = backends.map((b) => {
          const out = new Float32Array(nTokens * rows);
          b.matmul(out, b.loadWeight({ name: "w", type, rows, cols, bytes }), x, nTokens);
          return out;
        });
        expect(outs[1], typeName(type)).toEqual(outs[0]);
        expect(outs[2], typeName(type)).toEqual(outs[0]);
      }
    } finally {
      await Promise.all(backends.map((b) => b.close()));
    }
  });

  it("runs a model to the same logits as one thread", async () => {
    const file = parseGGUF(new Uint8Array(readFileSync(join(REFERENCE_DIR, "llama-Q4_K_M.gguf"))));
    const logits = [];
    for (const threads of [1, 2]) {
      const backend = await createWasmBackend({ threads });
      const model = loadModel(file, backend);
      const cache = model.createCache({ nCtx: 16 });
      model.forward(cache, [1, 20, 30, 40]);
      logits.push(model.forward(cache, [50]));
      await backend.close();
    }
    expect(logits[1]).toEqual(logits[0]);
  });

  it("rejects a thread count that is not a positive integer", async () => {
    await expect(createWasmBackend({ threads: 0 })).rejects.toThrow(RangeError);
    await expect(createWasmBackend({ threads: 1.5 })).rejects.toThrow(RangeError);
  });
});
