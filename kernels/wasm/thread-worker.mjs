// A matmul thread of the wasm backend (Node worker_threads): instantiates petrel-shared.wasm on
// the backend's shared memory, then takes chunks of rows of every job the main thread posts
// through the control block (see threads.ts for the protocol). Plain JS so that it loads in any
// Node process, TypeScript loader or not.
import { parentPort, workerData } from "node:worker_threads";

const { module, memory, control, spin, slots, scratch } = workerData;
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
  // A chunk index below `chunks` also guarantees that the job's arguments are in place.
  for (let i = Atomics.add(ctl, slots.next, 1); i < ctl[slots.chunks]; i = Atomics.add(ctl, slots.next, 1)) {
    const rows = ctl[slots.rows];
    const chunkRows = ctl[slots.chunkRows];
    try {
      kernels.matmul(ctl[slots.type], ctl[slots.w], ctl[slots.rowBytes], i * chunkRows, Math.min(rows, (i + 1) * chunkRows), ctl[slots.cols], ctl[slots.act], ctl[slots.nTokens], ctl[slots.out], rows, scratch);
    } catch (e) {
      // The main thread, waiting, cannot receive messages: tell it through the block.
      Atomics.store(ctl, slots.failed, 1);
      parentPort.postMessage(String(e));
    }
    if (Atomics.add(ctl, slots.done, 1) + 1 === ctl[slots.chunks]) Atomics.notify(ctl, slots.done);
  }
}
