/**
 * Fuzzing the GGUF reader with seeded mutations (byte changes, truncations, inserted/deleted
 * bytes, huge values written over count and length fields) of a small written file (parsed from
 * memory) and of a fixture model's header (read through an async source). Every case must parse
 * or fail with a GGUFError — any other exception fails — within bounded time and memory.
 *
 * Memory is measured two ways:
 * - exactly, through the parser's single allocation hook (ParseOptions.onAllocate), which
 *   announces every allocation before it is made: the largest may not exceed the file size plus
 *   64 KiB, and all of them together 8× the file size plus 64 KiB (many tiny values each cost
 *   an object);
 * - as a black box, from V8's heap statistics around each case (heap used, and external memory,
 *   which holds ArrayBuffers): garbage collection only lowers these, so an allocation past the
 *   bound would show as a larger rise. The bounds are loose (JIT code, GC timing) but a count
 *   trusted from the file (2^60 elements) would exceed them by orders of magnitude.
 */
import { getHeapStatistics } from "node:v8";
import { describe, expect, it } from "vitest";
import { parseGGUF, readGGUFHeader, type RandomAccessSource } from "../kernels/gguf/reader.ts";
import { GGUFError, GGUFValueType } from "../kernels/gguf/types.ts";
import { readModel, sampleFile } from "./helpers/gguf-samples.ts";

const FIXED_BOUND = 64 * 1024;
const CASES_SMALL = 3500;
const CASES_FIXTURE = 1500;

/** mulberry32: a small seeded generator, so that every failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Offsets of the u64 count and length fields of a valid file (tensor and key counts, string
 * lengths, array counts, dims, tensor offsets): where a corrupt value does the most harm.
 */
function countFieldOffsets(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: number[] = [8, 16];
  let pos = 24;
  const u32 = () => ((pos += 4), view.getUint32(pos - 4, true));
  const u64 = () => {
    fields.push(pos);
    pos += 8;
    return Number(view.getBigUint64(pos - 8, true));
  };
  const FIXED: Record<number, number> = { 0: 1, 1: 1, 7: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 10: 8, 11: 8, 12: 8 };
  const skipString = () => {
    const length = u64(); // read before `pos +=` takes pos's value
    pos += length;
  };
  const value = (type: number): void => {
    if (type === GGUFValueType.STRING) skipString();
    else if (type === GGUFValueType.ARRAY) {
      const elem = u32();
      const n = u64();
      for (let i = 0; i < n; i++) value(elem);
    } else pos += FIXED[type]!;
  };
  const nTensors = Number(view.getBigUint64(8, true));
  const nKV = Number(view.getBigUint64(16, true));
  for (let i = 0; i < nKV; i++) {
    skipString();
    value(u32());
  }
  for (let i = 0; i < nTensors; i++) {
    skipString();
    const nDims = u32();
    for (let d = 0; d < nDims; d++) u64();
    u32();
    u64();
  }
  return fields;
}

const HUGE = [1n << 60n, (1n << 64n) - 1n, 1n << 63n, 1n << 32n, (1n << 53n) + 1n];

/** One random mutation of `base`, with a description for failure reports. */
function mutate(base: Uint8Array, fields: number[], random: () => number): { bytes: Uint8Array; what: string } {
  const pick = (n: number) => Math.floor(random() * n);
  let bytes = base.slice();
  const what: string[] = [];
  for (let k = 1 + pick(3); k > 0; k--) {
    const kind = pick(5);
    if (kind === 0) {
      for (let n = 1 + pick(8); n > 0; n--) {
        const at = pick(bytes.length);
        bytes[at] = random() < 0.5 ? pick(256) : bytes[at]! ^ (1 << pick(8));
      }
      what.push("flip");
    } else if (kind === 1) {
      const keep = pick(bytes.length);
      bytes = bytes.slice(0, keep);
      what.push(`truncate ${keep}`);
    } else if (kind === 2 && fields.length > 0) {
      const at = fields[pick(fields.length)]!;
      if (at + 8 > bytes.length) continue;
      const values = [...HUGE, BigInt(base.length), BigInt(base.length + 1), BigInt(pick(2 ** 30)) * BigInt(pick(1024))];
      const v = values[pick(values.length)]!;
      new DataView(bytes.buffer).setBigUint64(at, v, true);
      what.push(`u64 ${v} at ${at}`);
    } else if (kind === 3) {
      const at = pick(bytes.length);
      const n = 1 + pick(16);
      const shifted = new Uint8Array(bytes.length + n);
      shifted.set(bytes.subarray(0, at));
      for (let i = 0; i < n; i++) shifted[at + i] = pick(256);
      shifted.set(bytes.subarray(at), at + n);
      bytes = random() < 0.5 ? shifted : new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(Math.min(bytes.length, at + n))]);
      what.push(`shift ${n} at ${at}`);
    } else {
      const at = pick(Math.max(1, bytes.length - 4));
      const values = [0, 1, 8, 9, 12, 13, 14, 15, 30, 99, 0x7fffffff, 0xffffffff];
      if (at + 4 <= bytes.length) new DataView(bytes.buffer).setUint32(at, values[pick(values.length)]!, true);
      what.push(`u32 at ${at}`);
    }
  }
  return { bytes, what: what.join(", ") };
}

interface Outcome {
  ok: number;
  errors: number;
  failures: string[];
  slowestMs: number;
}

/** Runs one case, checking its outcome, its announced allocations and the heap around it. */
async function runCase(size: number, parse: (onAllocate: (n: number) => void) => unknown, what: string, outcome: Outcome): Promise<void> {
  let largest = 0;
  let total = 0;
  const before = getHeapStatistics();
  const start = performance.now();
  try {
    await parse((n) => {
      largest = Math.max(largest, n);
      total += n;
    });
    outcome.ok++;
  } catch (e) {
    if (e instanceof GGUFError) outcome.errors++;
    else outcome.failures.push(`${what}: ${e instanceof Error ? e.stack : String(e)}`);
  }
  outcome.slowestMs = Math.max(outcome.slowestMs, performance.now() - start);
  const after = getHeapStatistics();
  const heapRise = after.used_heap_size - before.used_heap_size;
  const externalRise = after.external_memory - before.external_memory;
  if (largest > size + FIXED_BOUND) outcome.failures.push(`${what}: allocation of ${largest} bytes for a ${size}-byte file`);
  if (total > 8 * size + FIXED_BOUND) outcome.failures.push(`${what}: ${total} bytes allocated for a ${size}-byte file`);
  if (heapRise > 32 * size + (16 << 20)) outcome.failures.push(`${what}: heap rose by ${heapRise} bytes`);
  if (externalRise > 4 * size + (16 << 20)) outcome.failures.push(`${what}: external memory rose by ${externalRise} bytes`);
}

/** An async source of `size` bytes whose first bytes are `prefix` and the rest zeros (tensor data, never read). */
function headerOnlySource(prefix: Uint8Array, size: number): RandomAccessSource {
  return {
    size,
    read: async (offset, length) => {
      const out = new Uint8Array(length);
      if (offset < prefix.length) out.set(prefix.subarray(offset, Math.min(prefix.length, offset + length)));
      return out;
    },
  };
}

function expectClean(outcome: Outcome, cases: number): void {
  expect(outcome.failures.slice(0, 5)).toEqual([]);
  expect(outcome.ok + outcome.errors).toBe(cases);
  // Both outcomes occur: the mutations are neither all fatal nor all harmless.
  expect(outcome.errors).toBeGreaterThan(cases / 2);
  expect(outcome.ok).toBeGreaterThan(cases / 100);
  expect(outcome.slowestMs).toBeLessThan(1000);
}

describe("GGUF reader fuzz", () => {
  it(`${CASES_SMALL} mutations of a small file with every value type, parsed from memory`, async () => {
    const base = sampleFile();
    const fields = countFieldOffsets(base);
    expect(fields.length).toBeGreaterThan(50);
    const random = rng(0x9e3779b9);
    const outcome: Outcome = { ok: 0, errors: 0, failures: [], slowestMs: 0 };
    for (let i = 0; i < CASES_SMALL; i++) {
      const { bytes, what } = mutate(base, fields, random);
      await runCase(bytes.length, (onAllocate) => parseGGUF(bytes, { onAllocate }), `case ${i} (${what})`, outcome);
    }
    expectClean(outcome, CASES_SMALL);
  });

  it(`${CASES_FIXTURE} mutations of a fixture model's header, read through an async source`, async () => {
    const model = readModel("stories260K.gguf");
    const header = model.subarray(0, parseGGUF(model).dataOffset);
    const fields = countFieldOffsets(model);
    const random = rng(20250731);
    const outcome: Outcome = { ok: 0, errors: 0, failures: [], slowestMs: 0 };
    for (let i = 0; i < CASES_FIXTURE; i++) {
      const { bytes, what } = mutate(header, fields, random);
      // A truncated or shortened header stands for a file cut there; otherwise the tensor data follows.
      const size = bytes.length < header.length ? bytes.length : model.length + (bytes.length - header.length);
      const source = headerOnlySource(bytes, size);
      await runCase(size, (onAllocate) => readGGUFHeader(source, 4096, { onAllocate }), `case ${i} (${what})`, outcome);
    }
    expectClean(outcome, CASES_FIXTURE);
  });
});
