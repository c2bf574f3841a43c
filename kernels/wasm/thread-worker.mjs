// A matmul thread of the wasm backend (Node worker_threads): instantiates petrel-shared.wasm on
// the backend's shared memory, then runs its share of the rows of every job the main thread
// posts through the control block (see threads.ts for the protocol). Plain JS so that it loads
// in any Node process, TypeScript loader or not.
import { parentPort, workerData } from "node:worker_threads";

const { module, memory, control, index, nThreads, spin, slots, scratch } = workerData;
const { exports: kernels } = await WebAssembly.instantiate(module, { env: { memory } });
const ctl = new Int32Array(memory.buffer, control, slots.count);
parentPort.postMessage("ready");

let seen = 0;
for (;;) {
  let spins = 0;
  while (Atomics.load(ctl, slots.generation) === seen) {
    if (++spins > spin) Atomics.wait(ctl, slots.generation, seen);
  }
  seen = Atomics.load(ctl, slots.generation);
  if (Atomics.load(ctl, slots.exit)) break;
  const rows = ctl[slots.rows];
  const share = Math.ceil(rows / nThreads / 4) * 4;
  const start = Math.min(rows, index * share);
  const end = Math.min(rows, start + share);
  if (start < end) {
    kernels.matmul(ctl[slots.type], ctl[slots.w], ctl[slots.rowBytes], start, end, ctl[slots.cols], ctl[slots.act], ctl[slots.nTokens], ctl[slots.out], rows, scratch);
  }
  if (Atomics.sub(ctl, slots.pending, 1) === 1) Atomics.notify(ctl, slots.pending);
}
