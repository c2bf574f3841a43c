/**
 * The (cos, sin) tables of RoPE in wasm memory. A forward pass ropes Q and K of every layer at
 * the same positions, so the table of the last call is kept and reused while positions and
 * parameters stay the same.
 */
import type { RopeParams } from "../model/backend.ts";
import type { WasmHeap } from "./heap.ts";
import type { Kernels } from "./kernels.ts";

export class RopeTables {
  private ptr = 0;
  private capacity = 0;
  private positions = new Int32Array(0);
  private params: RopeParams | undefined;

  constructor(
    private readonly kernels: Kernels,
    private readonly heap: WasmHeap,
  ) {}

  /** Address of the table for these positions: nDims floats per position. */
  table(positions: Int32Array, p: RopeParams): number {
    if (!Number.isInteger(p.nDims) || p.nDims <= 0 || p.nDims % 2 !== 0) throw new RangeError(`RoPE nDims must be a positive even integer, got ${p.nDims}`);
    if (this.params && sameParams(this.params, p) && sameValues(this.positions, positions)) return this.ptr;
    const n = positions.length;
    const bytes = 4 * n * p.nDims + 4 * n; // the table, then the positions it is built from
    if (bytes > this.capacity) {
      if (this.capacity) this.heap.release(this.ptr);
      this.capacity = bytes;
      this.ptr = this.heap.alloc(bytes);
    }
    const positionsPtr = this.ptr + 4 * n * p.nDims;
    this.heap.i32.set(positions, positionsPtr >>> 2);
    this.kernels.ropeTable(positionsPtr, n, p.nDims, p.freqBase, p.freqScale, this.ptr);
    this.positions = positions.slice();
    this.params = { ...p };
    return this.ptr;
  }
}

function sameParams(a: RopeParams, b: RopeParams): boolean {
  return a.nDims === b.nDims && a.freqBase === b.freqBase && a.freqScale === b.freqScale && a.neox === b.neox;
}

function sameValues(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
