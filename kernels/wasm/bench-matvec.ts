/**
 * Matrix × vector throughput of the wasm kernels, in GB/s of weights read:
 *   node --import tsx kernels/wasm/bench-matvec.ts [--types Q8_0,Q4_0] [--shapes 576x1536,2048x5632] [--tokens 1]
 * "cold": the weights rotate through ~240 MB of copies, so they come from DRAM as in decoding;
 * "hot": one copy, reused (from L2/L3). Each figure is the best of several rounds, because a
 * shared machine's noise only ever slows a round down.
 */
import { parseArgs } from "node:util";
import { TYPE_LAYOUT, rowBytes, typeFromName } from "../gguf/types.ts";
import { quantize } from "../quant/quantize.ts";
import { loadWasmModule } from "./backend.ts";
import { WasmHeap } from "./heap.ts";
import { MATMUL_SCRATCH_BYTES, instantiateKernels } from "./kernels.ts";
import { wasmApi } from "./wasm-api.ts";

const { values } = parseArgs({
  options: {
    types: { type: "string", default: "Q8_0,Q4_0,Q4_K,Q6_K" },
    shapes: { type: "string", default: "576x1536,1536x576,2048x5632,5632x2048" },
    tokens: { type: "string", default: "1" },
    rounds: { type: "string", default: "7" },
  },
});
const COLD_BYTES = 240e6;

const memory = new wasmApi.Memory({ initial: 1 });
const kernels = await instantiateKernels(await loadWasmModule(), memory);
const heap = new WasmHeap(memory, kernels.heapBase());
const nTokens = Number(values.tokens);

for (const shape of values.shapes.split(",")) {
  const [rows, cols] = shape.split("x").map(Number) as [number, number];
  for (const name of values.types.split(",")) {
    const type = typeFromName(name);
    if (type === undefined || cols % TYPE_LAYOUT[type]!.blockSize !== 0) continue;
    const bytesPerRow = rowBytes(type, cols);
    const matrix = rows * bytesPerRow;
    // One real quantized matrix, copied as many times as the cold run needs.
    const blocks = quantize(type, new Float32Array(rows * cols).map((_, i) => Math.sin(i * 0.618) * 0.1));
    const copies = Math.max(1, Math.floor(COLD_BYTES / matrix));
    const weights = heap.alloc(copies * matrix);
    for (let c = 0; c < copies; c++) heap.u8.set(blocks, weights + c * matrix);
    const x = heap.alloc(4 * nTokens * cols);
    heap.writeF32(x, new Float32Array(nTokens * cols).map((_, i) => Math.cos(i * 0.37)));
    const actBuffer = heap.alloc(Math.max(1, nTokens * kernels.activationBytes(type, cols)));
    const act = kernels.prepareActivations(type, x, nTokens, cols, actBuffer);
    const out = heap.alloc(4 * nTokens * rows);
    const scratch = heap.alloc(MATMUL_SCRATCH_BYTES);
    const time = (nCopies: number) => {
      let best = Infinity;
      for (let round = 0; round < Number(values.rounds); round++) {
        const calls = Math.max(nCopies, 8);
        const start = performance.now();
        for (let i = 0; i < calls; i++) kernels.matmul(type, weights + (i % nCopies) * matrix, bytesPerRow, 0, rows, cols, act, nTokens, out, rows, scratch);
        best = Math.min(best, (performance.now() - start) / calls);
      }
      return best / 1000;
    };
    const cold = time(copies), hot = time(1);
    const gbs = (s: number) => (matrix / s / 1e9).toFixed(2);
    const gmacs = (s: number) => ((rows * cols * nTokens) / s / 1e9).toFixed(1);
    console.log(`${name.padEnd(5)} ${shape.padEnd(10)} tokens ${nTokens}: cold ${gbs(cold)} GB/s, hot ${gbs(hot)} GB/s (${gmacs(hot)} GMAC/s)`);
    for (const ptr of [scratch, out, actBuffer, x, weights]) heap.release(ptr);
  }
}
