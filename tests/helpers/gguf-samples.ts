/** Small GGUF files and sources shared by the gguf-* tests. */
import { readFileSync } from "node:fs";
import type { RandomAccessSource } from "../../kernels/gguf/reader.ts";
import { GGMLType, GGUFValueType } from "../../kernels/gguf/types.ts";
import { writeGGUF, type GGUFMetadataEntry, type GGUFWriteSpec } from "../../kernels/gguf/writer.ts";
import { quantize } from "../../kernels/quant/quantize.ts";

export const REFERENCE_MODELS = new URL("../fixtures/reference/", import.meta.url).pathname;

export function readModel(name: string): Uint8Array {
  return new Uint8Array(readFileSync(REFERENCE_MODELS + name));
}

/** One metadata entry of every value type, typed arrays of every class, and nested arrays. */
export function everyValueType(): GGUFMetadataEntry[] {
  const T = GGUFValueType;
  return [
    { key: "t.u8", value: 255, type: T.UINT8 },
    { key: "t.i8", value: -128, type: T.INT8 },
    { key: "t.u16", value: 65535, type: T.UINT16 },
    { key: "t.i16", value: -32768, type: T.INT16 },
    { key: "t.u32", value: 4294967295, type: T.UINT32 },
    { key: "t.i32", value: -2147483648, type: T.INT32 },
    { key: "t.f32", value: Math.fround(3.14159), type: T.FLOAT32 },
    { key: "t.f64", value: Math.PI, type: T.FLOAT64 },
    { key: "t.u64", value: 2n ** 64n - 1n, type: T.UINT64 },
    { key: "t.i64", value: -(2n ** 63n), type: T.INT64 },
    { key: "t.u64.small", value: 12345, type: T.UINT64 },
    { key: "t.bool", value: true },
    { key: "t.string", value: "héllo, wörld ✓" },
    { key: "t.empty_string", value: "" },
    { key: "a.u8", value: Uint8Array.of(0, 1, 255) },
    { key: "a.i8", value: Int8Array.of(-128, 0, 127) },
    { key: "a.u16", value: Uint16Array.of(0, 65535) },
    { key: "a.i16", value: Int16Array.of(-32768, 32767) },
    { key: "a.u32", value: Uint32Array.of(0, 4294967295) },
    { key: "a.i32", value: Int32Array.of(-5, 7) },
    { key: "a.f32", value: Float32Array.of(0.5, -1e-30, Infinity) },
    { key: "a.f64", value: Float64Array.of(1e300, -0) },
    { key: "a.u64", value: BigUint64Array.of(0n, 2n ** 64n - 1n) },
    { key: "a.i64", value: BigInt64Array.of(-(2n ** 63n), 42n) },
    { key: "a.bool", value: [true, false, true] },
    { key: "a.string", value: ["a", "", "ünïcode", "<0x0A>"] },
    { key: "a.empty_u32", value: new Uint32Array(0) },
    { key: "a.empty_string", value: [] },
    { key: "a.nested", value: [["x", "y"], [], ["z"]] },
    { key: "a.nested_typed", value: [Int32Array.of(1, 2), Float32Array.of(3), [Uint8Array.of(4)]] },
  ];
}

/** A small, valid file: every value type, and a few tensors of different types. */
export function sampleSpec(options: { version?: 2 | 3; alignment?: number } = {}): GGUFWriteSpec {
  const ramp = Float32Array.from({ length: 512 }, (_, i) => Math.sin(i) * 2);
  return {
    ...options,
    metadata: [{ key: "general.architecture", value: "test" }, ...everyValueType()],
    tensors: [
      { name: "f32", dims: [8, 2], type: GGMLType.F32, bytes: new Uint8Array(ramp.slice(0, 16).buffer) },
      { name: "q4_0", dims: [64, 2], type: GGMLType.Q4_0, bytes: quantize(GGMLType.Q4_0, ramp.subarray(0, 128)) },
      { name: "q6_k", dims: [256, 2], type: GGMLType.Q6_K, bytes: quantize(GGMLType.Q6_K, ramp) },
    ],
  };
}

export function sampleFile(options: { version?: 2 | 3; alignment?: number } = {}): Uint8Array {
  return writeGGUF(sampleSpec(options));
}

/** A source over bytes in memory that records every read. */
export function countingSource(bytes: Uint8Array): RandomAccessSource & { reads: number; bytesRead: number } {
  const source = {
    size: bytes.length,
    reads: 0,
    bytesRead: 0,
    async read(offset: number, length: number): Promise<Uint8Array> {
      source.reads++;
      source.bytesRead += length;
      return bytes.slice(offset, offset + length);
    },
  };
  return source;
}
