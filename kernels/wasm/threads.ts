/**
 * Node-only multi-threading of the wasm backend's matmuls: worker_threads instantiate the same
 * module on the same shared memory, and each matmul's rows are shared out between them and the
 * main thread. Everything else stays on the main thread.
 *
 * Protocol, through an Int32Array control block in shared memory: the main thread writes a job
 * (arguments, number of chunks of rows), resets the chunk counters and bumps `generation`; every
 * thread, main included, takes chunks with an atomic add on `next` until none is left, and counts
 * finished ones in `done`; the main thread returns once `done` reaches the number of chunks.
 * Taking chunks rather than fixed shares keeps a thread the OS has descheduled from holding up
 * the others: the main thread simply does its part. Waiters spin briefly before sleeping, since a
 * decode step posts a job every ~50 µs, less than a sleep/wake round trip.
 */
import type { WasmHeap } from "./heap.ts";
import { type Kernels, MATMUL_SCRATCH_BYTES, type MatmulRunner } from "./kernels.ts";
import type { WasmMemory, WasmModule } from "./wasm-api.ts";

const SLOTS = {
  generation: 0, exit: 1, failed: 2, next: 3, done: 4, chunks: 5, chunkRows: 6,
  type: 7, w: 8, rowBytes: 9, rows: 10, cols: 11, act: 12, nTokens: 13, out: 14, count: 15,
};
/** Polls before a waiter sleeps (a few µs). */
const SPIN = 2000;
/** Chunks per thread: small enough to balance, large enough to amortize a call. */
const CHUNKS_PER_THREAD = 4;
/** `next` while a job is being written: no thread can take a chunk of it. */
const CLOSED = 1 << 30;

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
  c[SLOTS.next] = CLOSED;
  const workers = Array.from({ length: nThreads - 1 }, (_, i) => {
    const worker = new Worker(new URL("./thread-worker.mjs", import.meta.url), {
      workerData: { module, memory, control, spin: SPIN, slots: SLOTS, scratch: scratch + MATMUL_SCRATCH_BYTES * (i + 1) },
    });
    worker.unref();
    return worker;
  });
  await Promise.all(workers.map((w) => new Promise((resolve, reject) => w.once("message", resolve).once("error", reject))));

  const run: MatmulRunner = (type, w, rowBytes, rows, cols, act, nTokens, out) => {
    // Whole groups of four rows, the kernels' unit.
    const chunkRows = Math.max(4, Math.ceil(rows / (nThreads * CHUNKS_PER_THREAD) / 4) * 4);
    const chunks = Math.ceil(rows / chunkRows);
    Atomics.store(c, SLOTS.next, CLOSED);
    c[SLOTS.type] = type;
    c[SLOTS.w] = w;
    c[SLOTS.rowBytes] = rowBytes;
    c[SLOTS.rows] = rows;
    c[SLOTS.cols] = cols;
    c[SLOTS.act] = act;
    c[SLOTS.nTokens] = nTokens;
    c[SLOTS.out] = out;
    c[SLOTS.chunkRows] = chunkRows;
    c[SLOTS.chunks] = chunks;
    Atomics.store(c, SLOTS.done, 0);
    Atomics.store(c, SLOTS.next, 0);
    Atomics.add(c, SLOTS.generation, 1);
    Atomics.notify(c, SLOTS.generation);
    let failure: unknown;
    for (let i = Atomics.add(c, SLOTS.next, 1); i < chunks; i = Atomics.add(c, SLOTS.next, 1)) {
      try {
        kernels.matmul(type, w, rowBytes, i * chunkRows, Math.min(rows, (i + 1) * chunkRows), cols, act, nTokens, out, rows, scratch);
      } catch (e) {
        failure ??= e; // still count it and wait: workers are writing into memory the caller reuses
      }
      Atomics.add(c, SLOTS.done, 1);
    }
    let spins = 0;
    for (let done = Atomics.load(c, SLOTS.done); done !== chunks; done = Atomics.load(c, SLOTS.done)) {
      if (++spins > SPIN) Atomics.wait(c, SLOTS.done, done, 1000);
    }
    if (failure) throw failure;
    if (Atomics.load(c, SLOTS.failed)) throw new Error("a wasm matmul thread failed; its output is incomplete");
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
