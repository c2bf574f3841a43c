/** writeGGUF: value types (inferred and explicit), layout, validation, and fixture round trips. */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseGGUF, tensorBytes } from "../kernels/gguf/reader.ts";
import { GGMLType, GGUFValueType } from "../kernels/gguf/types.ts";
import { inferElementType, inferValueType, writeGGUF, type GGUFMetadataEntry } from "../kernels/gguf/writer.ts";
import { everyValueType, readModel, REFERENCE_MODELS, sampleFile, sampleSpec } from "./helpers/gguf-samples.ts";

const T = GGUFValueType;

/** Writes one metadata entry and reads back its value, type, and encoded size (unpadded: alignment 1). */
function roundTrip(entry: GGUFMetadataEntry) {
  const file = parseGGUF(writeGGUF({ metadata: [entry], tensors: [], alignment: 1 }));
  const empty = writeGGUF({ metadata: [{ key: entry.key, value: "" }], tensors: [], alignment: 1 });
  return { value: file.metadata.get(entry.key), type: file.metadataTypes.get(entry.key), file, emptySize: empty.length };
}

describe("writeGGUF metadata", () => {
  for (const version of [2, 3] as const) {
    it(`round-trips every value type, typed arrays and nested arrays (v${version})`, () => {
      const entries = everyValueType();
      const file = parseGGUF(writeGGUF({ metadata: entries, tensors: [], version }));
      expect(file.version).toBe(version);
      expect([...file.metadata.keys()]).toEqual(entries.map((e) => e.key));
      for (const e of entries) {
        const expected = typeof e.value === "bigint" && e.value <= BigInt(Number.MAX_SAFE_INTEGER) && e.value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(e.value) : e.value;
        expect(file.metadata.get(e.key), e.key).toEqual(expected);
        expect(file.metadataTypes.get(e.key), e.key).toBe(e.type ?? inferValueType(e.value));
      }
      // Typed arrays come back as the same class, so their element type survives.
      expect(file.metadata.get("a.u64")).toBeInstanceOf(BigUint64Array);
      expect(file.metadata.get("a.f64")).toBeInstanceOf(Float64Array);
      expect(Object.is((file.metadata.get("a.f64") as Float64Array)[1], -0)).toBe(true);
    });
  }

  it("infers types from JS values", () => {
    expect(inferValueType(7)).toBe(T.UINT32);
    expect(inferValueType(-7)).toBe(T.INT32);
    expect(inferValueType(2 ** 32)).toBe(T.UINT64);
    expect(inferValueType(-(2 ** 31) - 1)).toBe(T.INT64);
    expect(inferValueType(0.5)).toBe(T.FLOAT32);
    expect(inferValueType(10n)).toBe(T.UINT64);
    expect(inferValueType(-10n)).toBe(T.INT64);
    expect(inferValueType(false)).toBe(T.BOOL);
    expect(inferValueType("s")).toBe(T.STRING);
    expect(inferValueType(["s"])).toBe(T.ARRAY);
    expect(inferElementType([1, 2, 3], "k")).toBe(T.UINT32);
    expect(inferElementType([1, -2, 3], "k")).toBe(T.INT32);
    expect(inferElementType([1, 2.5], "k")).toBe(T.FLOAT32);
    expect(inferElementType([1, 2 ** 40], "k")).toBe(T.UINT64);
    expect(inferElementType([1n, -1n], "k")).toBe(T.INT64);
    expect(inferElementType(new Int16Array(0), "k")).toBe(T.INT16);
    expect(inferElementType([[1], ["a"]], "k")).toBe(T.ARRAY);
    expect(() => inferElementType([1, "a"], "k")).toThrow(/k: array mixes number and string/);
  });

  it("honours explicit types and element types, with their encoded sizes", () => {
    const sizes: [GGUFMetadataEntry, GGUFValueType, number][] = [
      [{ key: "k", value: 5, type: T.UINT8 }, T.UINT8, 1],
      [{ key: "k", value: -5, type: T.INT16 }, T.INT16, 2],
      [{ key: "k", value: 5, type: T.INT64 }, T.INT64, 8],
      [{ key: "k", value: 0.1, type: T.FLOAT64 }, T.FLOAT64, 8],
    ];
    for (const [entry, type, bytes] of sizes) {
      const r = roundTrip(entry);
      expect(r.type).toBe(type);
      expect(r.value).toBe(entry.value);
      expect(r.file.fileSize - r.emptySize).toBe(bytes - 8); // an empty string value takes 8 bytes
    }
    const asInt16 = roundTrip({ key: "k", value: Int32Array.of(-3, 300), elementType: T.INT16 }).value;
    expect(asInt16).toEqual(Int16Array.of(-3, 300));
    expect(roundTrip({ key: "k", value: [1, 2], elementType: T.FLOAT64 }).value).toEqual(Float64Array.of(1, 2));
    expect(roundTrip({ key: "k", value: 1.1 }).value).toBe(Math.fround(1.1));
  });

  it("refuses values that do not fit their type, naming the key", () => {
    const bad: [GGUFMetadataEntry, RegExp][] = [
      [{ key: "x.u8", value: 256, type: T.UINT8 }, /x\.u8: 256 is not a UINT8/],
      [{ key: "x.u32", value: -1, type: T.UINT32 }, /x\.u32: -1 is not a UINT32/],
      [{ key: "x.i32", value: 1.5, type: T.INT32 }, /x\.i32/],
      [{ key: "x.u64", value: -1n, type: T.UINT64 }, /x\.u64/],
      [{ key: "x.s", value: 3, type: T.STRING }, /x\.s: number is not a string/],
      [{ key: "x.b", value: 1, type: T.BOOL }, /x\.b: number is not a boolean/],
      [{ key: "x.a", value: "no", type: T.ARRAY }, /x\.a: string is not an array/],
      [{ key: "x.e", value: [1, 300], elementType: T.UINT8 }, /x\.e\[1\]: 300 is not a UINT8/],
      [{ key: "x.t", value: 1, type: 99 as GGUFValueType }, /x\.t: unknown GGUF value type 99/],
    ];
    for (const [entry, message] of bad) expect(() => writeGGUF({ metadata: [entry], tensors: [] })).toThrow(message);
    expect(() => writeGGUF({ metadata: [{ key: "k", value: 1 }, { key: "k", value: 2 }], tensors: [] })).toThrow(/duplicate metadata key k/);
    expect(() => writeGGUF({ metadata: [], tensors: [], version: 1 as 2 })).toThrow(/version 1/);
  });
});

describe("writeGGUF tensors and layout", () => {
  it("places each tensor at an aligned offset and reads back its bytes", () => {
    const spec = sampleSpec();
    const file = parseGGUF(writeGGUF(spec));
    expect(file.tensors.map((t) => [t.name, t.dims, t.type])).toEqual(spec.tensors.map((t) => [t.name, t.dims, t.type]));
    for (const [i, t] of file.tensors.entries()) {
      expect(t.fileOffset % 32).toBe(0);
      expect(tensorBytes(file, t)).toEqual(spec.tensors[i]!.bytes);
    }
    expect(file.dataOffset % 32).toBe(0);
    expect(file.fileSize % 32).toBe(0); // the last tensor is padded too, as ggml does
  });

  it("writes general.alignment for a non-default alignment and aligns the data to it", () => {
    const bytes = sampleFile({ alignment: 256 });
    const file = parseGGUF(bytes);
    expect(file.alignment).toBe(256);
    expect(file.metadata.get("general.alignment")).toBe(256);
    expect(file.metadataTypes.get("general.alignment")).toBe(T.UINT32);
    expect(file.dataOffset % 256).toBe(0);
    for (const t of file.tensors) expect(t.fileOffset % 256).toBe(0);
    expect(bytes.subarray(file.dataOffset - 8, file.dataOffset).every((b) => b === 0)).toBe(true);
    // Default alignment: nothing added.
    expect(parseGGUF(sampleFile()).metadata.has("general.alignment")).toBe(false);
  });

  it("refuses inconsistent tensors and alignments", () => {
    const q = sampleSpec().tensors[1]!;
    const cases: [Partial<typeof q>, RegExp][] = [
      [{ bytes: q.bytes.subarray(1) }, /tensor q4_0: 64×2 Q4_0 takes 72 bytes, got 71/],
      [{ dims: [48, 2] }, /Q4_0 rows must be a multiple of 32/],
      [{ dims: [] }, /needs 1\.\.4 dims/],
      [{ dims: [64, 1, 1, 1, 2] }, /needs 1\.\.4 dims/],
      [{ dims: [64, -2] }, /are not sizes/],
      [{ type: 99 as GGMLType }, /unknown tensor type 99/],
      [{ name: "n".repeat(64) }, /name longer than 63 bytes/],
    ];
    for (const [change, message] of cases) expect(() => writeGGUF({ metadata: [], tensors: [{ ...q, ...change }] })).toThrow(message);
    expect(() => writeGGUF({ metadata: [], tensors: [q, q] })).toThrow(/duplicate tensor q4_0/);
    expect(() => writeGGUF({ metadata: [], tensors: [], alignment: 48 })).toThrow(/not a power of two/);
    const declared = { key: "general.alignment", value: 64, type: T.UINT32 };
    expect(() => writeGGUF({ metadata: [declared], tensors: [], alignment: 128 })).toThrow(/contradicts general.alignment = 64/);
    expect(parseGGUF(writeGGUF({ metadata: [declared], tensors: [], alignment: 64 })).alignment).toBe(64);
  });
});

describe("writeGGUF on the fixture models", () => {
  const models = readdirSync(REFERENCE_MODELS).filter((f) => f.endsWith(".gguf"));

  it("finds the fixture models", () => expect(models.length).toBeGreaterThanOrEqual(10));

  for (const name of models) {
    it(`rewrites ${name} from its parsed header and tensors, byte for byte`, () => {
      const original = readModel(name);
      const parsed = parseGGUF(original);
      const rewritten = writeGGUF({
        version: parsed.version as 2 | 3,
        metadata: [...parsed.metadata].map(([key, value]) => ({ key, value, type: parsed.metadataTypes.get(key) })),
        tensors: parsed.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, bytes: tensorBytes(parsed, t) })),
      });
      const reparsed = parseGGUF(rewritten);
      const { bytes: _a, ...header } = parsed;
      const { bytes: _b, ...reheader } = reparsed;
      expect(reheader).toEqual(header);
      expect(Buffer.compare(rewritten, original)).toBe(0);
    });
  }
});
