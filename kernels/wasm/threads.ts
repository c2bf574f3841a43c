/**
 * Node-only multi-threading of the wasm backend's matmuls: worker_threads instantiate the same
 * module on the same shared memory, and each matmul's rows are split between them and the main
 * thread (in multiples of four, the kernels' row group). Everything else stays on the main thread.
 *
 * Protocol, through a small Int32Array control block in shared memory: the main thread writes a
 * job's arguments, sets `pending` to the number of workers, bumps `generation` and notifies;
 * each worker runs its rows and decrements `pending`; the main thread runs its own rows, then
 * waits for `pending` to reach 0. Waiters spin briefly before sleeping: a decode step posts a
 * job every ~50 µs, shorter than a sleep/wake round trip.
 */
import type { WasmHeap } from "./heap.ts";
import { type Kernels, MATMUL_SCRATCH_BYTES, type MatmulRunner } from "./kernels.ts";
import type { WasmMemory, WasmModule } from "./wasm-api.ts";

const SLOTS = { generation: 0, pending: 1, exit: 2, type: 3, w: 4, rowBytes: 5, rows: 6, cols: 7, act: 8, nTokens: 9, out: 10, count: 11 };
/** Polls before a waiter sleeps (a few tens of µs). */
const SPIN = 20000;

export interface MatmulThreads {
  run: MatmulRunner;
  /** Stops the workers. */
  close(): Promise<void>;
}

export async function startMatmulThreads(module: WasmModule, memory: WasmMemory, heap: WasmHeap, kernels: Kernels, nThreads: number): Promise<MatmulThreads> {
  const { Worker } = await import("node:worker_threads");
  const control = heap.alloc(4 * SLOTS.count);
  const scratch = heap.alloc(MATMUL_SCRATCH_BYTES * nThreads); // one slice per thread
  // A shared buffer never detaches: this view stays valid however the memory grows.
  const c = new Int32Array(memory.buffer, control, SLOTS.count);
  c.fill(0);
  const workers = Array.from({ length: nThreads - 1 }, (_, i) => {
    const worker = new Worker(new URL("./thread-worker.mjs", import.meta.url), {
      workerData: { module, memory, control, index: i + 1, nThreads, spin: SPIN, slots: SLOTS, scratch: scratch + MATMUL_SCRATCH_BYTES * (i + 1) },
    });
    worker.unref();
    return worker;
  });
  await Promise.all(workers.map((w) => new Promise((resolve, reject) => w.once("message", resolve).once("error", reject))));

  const run: MatmulRunner = (type, w, rowBytes, rows, cols, act, nTokens, out) => {
    c[SLOTS.type] = type;
    c[SLOTS.w] = w;
    c[SLOTS.rowBytes] = rowBytes;
    c[SLOTS.rows] = rows;
    c[SLOTS.cols] = cols;
    c[SLOTS.act] = act;
    c[SLOTS.nTokens] = nTokens;
    c[SLOTS.out] = out;
    Atomics.store(c, SLOTS.pending, workers.length);
    Atomics.add(c, SLOTS.generation, 1);
    Atomics.notify(c, SLOTS.generation);
    const share = Math.ceil(rows / nThreads / 4) * 4;
    kernels.matmul(type, w, rowBytes, 0, Math.min(rows, share), cols, act, nTokens, out, rows, scratch);
    let spins = 0;
    for (let left = Atomics.load(c, SLOTS.pending); left !== 0; left = Atomics.load(c, SLOTS.pending)) {
      if (++spins > SPIN) Atomics.wait(c, SLOTS.pending, left, 1000);
    }
  };

  return {
    run,
    async close() {
      const exited = workers.map((w) => {
        w.ref(); // keep the process alive until they are gone
        return new Promise((resolve) => w.once("exit", resolve));
      });
      Atomics.store(c, SLOTS.exit, 1);
      Atomics.add(c, SLOTS.generation, 1);
      Atomics.notify(c, SLOTS.generation);
      await Promise.all(exited);
      heap.release(control);
      heap.release(scratch);
    },
  };
}
