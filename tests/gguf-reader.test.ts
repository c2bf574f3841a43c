/** The GGUF reader: versions, alignment, async header reads, and every malformed-input error. */
import { describe, expect, it } from "vitest";
import { memorySource, parseGGUF, readGGUFHeader, readTensorBytes, tensorBytes } from "../kernels/gguf/reader.ts";
import { GGMLType, GGUFError, GGUFValueType } from "../kernels/gguf/types.ts";
import { writeGGUF, type GGUFMetadataEntry, type GGUFTensorSpec } from "../kernels/gguf/writer.ts";
import { countingSource, readModel, sampleFile } from "./helpers/gguf-samples.ts";

const T = GGUFValueType;

function gguf(metadata: GGUFMetadataEntry[], tensors: GGUFTensorSpec[] = []): Uint8Array {
  return writeGGUF({ metadata, tensors });
}

function patchU32(bytes: Uint8Array, at: number, v: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint32(at, v, true);
  return copy;
}

function patchU64(bytes: Uint8Array, at: number, v: bigint): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setBigUint64(at, v, true);
  return copy;
}

/** Parsing must fail with a GGUFError naming `field` at `offset`. */
function expectError(bytes: Uint8Array, field: string, offset: number, detail?: RegExp): void {
  let error: unknown;
  try {
    parseGGUF(bytes);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(GGUFError);
  const g = error as GGUFError;
  expect({ field: g.field, offset: g.offset }).toEqual({ field, offset });
  expect(g.message).toContain(`${field} at offset ${offset}`);
  if (detail) expect(g.message).toMatch(detail);
}

// A file with one key "k": magic 0, version 4, tensor_count 8, kv_count 16, key length 24,
// key 32, value type 33, value 37.
const VALUE_TYPE_AT = 33;
const VALUE_AT = 37;
// A file with no metadata and one 2-d tensor "t": name length 24, name 32, n_dims 33, dims 37 and
// 45, type 53, offset 57, data at 96.
const N_DIMS_AT = 33;
const DIMS_AT = 37;
const TYPE_AT = 53;
const OFFSET_AT = 57;
const DATA_AT = 96;

function oneTensor(): Uint8Array {
  return gguf([], [{ name: "t", dims: [32, 2], type: GGMLType.Q8_0, bytes: new Uint8Array(68) }]);
}

describe("parseGGUF", () => {
  it("reads v2 and v3 files", () => {
    for (const version of [2, 3] as const) {
      const file = parseGGUF(sampleFile({ version }));
      expect(file.version).toBe(version);
      expect(file.metadata.get("general.architecture")).toBe("test");
      expect(file.tensors.map((t) => t.name)).toEqual(["f32", "q4_0", "q6_k"]);
    }
  });

  it("locates tensor data after the header, aligned to general.alignment", () => {
    const file = parseGGUF(oneTensor());
    expect(file.dataOffset).toBe(DATA_AT);
    expect(file.tensors[0]).toMatchObject({ name: "t", dims: [32, 2], type: GGMLType.Q8_0, offset: 0, fileOffset: DATA_AT, nElements: 64, nBytes: 68 });
    for (const alignment of [1, 8, 64, 4096]) {
      const aligned = parseGGUF(sampleFile({ alignment }));
      expect(aligned.alignment).toBe(alignment);
      expect(aligned.dataOffset % alignment).toBe(0);
      for (const t of aligned.tensors) expect(t.fileOffset % alignment).toBe(0);
    }
  });

  it("reports an announced size for every allocation, none beyond the file's size", () => {
    const bytes = readModel("stories260K.gguf");
    const sizes: number[] = [];
    parseGGUF(bytes, { onAllocate: (n) => sizes.push(n) });
    expect(sizes.length).toBeGreaterThan(512); // one string per vocabulary token at least
    expect(Math.max(...sizes)).toBeLessThan(bytes.length);
  });
});

describe("readGGUFHeader from a random-access source", () => {
  const bytes = readModel("llama-F32.gguf");
  const { bytes: _, ...expected } = parseGGUF(bytes);

  it("reads the same header as parseGGUF, touching a small fraction of the file", async () => {
    const source = countingSource(bytes);
    expect(await readGGUFHeader(source)).toEqual(expected);
    expect(source.reads).toBe(1);
    expect(source.bytesRead).toBeLessThan(bytes.length / 10);
  });

  it("grows a small first read by reading only the missing bytes", async () => {
    const source = countingSource(bytes);
    expect(await readGGUFHeader(source, 1024)).toEqual(expected);
    expect(source.reads).toBeGreaterThan(3);
    expect(source.bytesRead).toBeLessThan(2 * expected.dataOffset);
    expect(source.bytesRead).toBeGreaterThanOrEqual(expected.dataOffset - 64);
  });

  it("reads tensors by their info", async () => {
    const source = memorySource(bytes);
    const header = await readGGUFHeader(source, 4096);
    const t = header.tensors[3]!;
    expect(Buffer.compare(await readTensorBytes(source, t), tensorBytes({ ...header, bytes }, t))).toBe(0);
  });

  it("fails with a GGUFError on a truncated file or a short read", async () => {
    await expect(readGGUFHeader(memorySource(bytes.subarray(0, 5000)), 1024)).rejects.toThrow(GGUFError);
    await expect(readGGUFHeader(memorySource(new Uint8Array(0)))).rejects.toThrow(/magic at offset 0/);
    const short = { size: bytes.length, read: async (o: number, n: number) => bytes.subarray(o, o + Math.floor(n / 2)) };
    await expect(readGGUFHeader(short)).rejects.toThrow(/source returned/);
  });
});

describe("malformed files", () => {
  it("not a GGUF file, or an unsupported version", () => {
    const good = gguf([{ key: "k", value: 1 }]);
    expectError(patchU32(good, 0, 0x464c457f), "magic", 0, /not a GGUF file/);
    expectError(patchU32(good, 4, 1), "version", 4, /unsupported GGUF version 1/);
    expectError(patchU32(good, 4, 4), "version", 4);
    expectError(patchU32(good, 4, 0x03000000), "version", 4, /big-endian/);
  });

  it("every truncation of a valid file, at every byte", () => {
    const good = sampleFile();
    const end = parseGGUF(good).tensors.at(-1)!;
    for (let n = 0; n < end.fileOffset + end.nBytes; n++) {
      expect(() => parseGGUF(good.subarray(0, n)), `truncated at ${n}`).toThrow(GGUFError);
    }
  });

  it("huge counts and lengths are refused before allocating", () => {
    const withArray = gguf([{ key: "k", value: Uint8Array.of(1, 2, 3) }]);
    expectError(patchU64(withArray, VALUE_AT + 4, 1n << 60n), "metadata.k count", VALUE_AT + 4, /exceeds the limit/);
    const withStrings = gguf([{ key: "k", value: ["a", "b"] }]);
    expectError(patchU64(withStrings, VALUE_AT + 4, 2n ** 64n - 1n), "metadata.k count", VALUE_AT + 4);
    const withString = gguf([{ key: "k", value: "abc" }]);
    expectError(patchU64(withString, VALUE_AT, 1n << 60n), "metadata.k length", VALUE_AT);
    expectError(patchU64(withString, 24, 1n << 60n), "metadata[0].key length", 24);
    expectError(patchU64(withString, 16, 1n << 60n), "metadata_kv_count", 16);
    expectError(patchU64(withString, 8, 1n << 60n), "tensor_count", 8);
  });

  it("unknown value and element types", () => {
    const good = gguf([{ key: "k", value: Uint8Array.of(1) }]);
    expectError(patchU32(good, VALUE_TYPE_AT, 99), "metadata.k type", VALUE_TYPE_AT, /unknown value type 99/);
    expectError(patchU32(good, VALUE_AT, 77), "metadata.k element type", VALUE_AT, /unknown value type 77/);
  });

  it("bad values: a bool that is not 0/1, arrays nested too deep, duplicate keys", () => {
    const bool = gguf([{ key: "k", value: true }]);
    const two = bool.slice();
    two[VALUE_AT] = 2;
    expectError(two, "metadata.k", VALUE_AT, /bool must be 0 or 1/);
    let deep: GGUFMetadataEntry["value"] = ["x"];
    for (let i = 0; i < 9; i++) deep = [deep];
    expect(() => parseGGUF(gguf([{ key: "k", value: deep }]))).toThrow(/nested deeper than 8/);
    // Keys "k1" then "k2" (u8 values): the second key's length is at 39, its last byte at 48.
    const dup = gguf([{ key: "k1", value: 1, type: T.UINT8 }, { key: "k2", value: 2, type: T.UINT8 }]);
    dup[48] = "1".charCodeAt(0);
    expectError(dup, "metadata[1].key", 39, /duplicate key k1/);
  });

  it("general.alignment must be an unsigned power of two", () => {
    // Key "general.alignment" (17 bytes): type at 49, value at 53.
    const good = gguf([{ key: "general.alignment", value: 64, type: T.UINT32 }]);
    expect(parseGGUF(good).alignment).toBe(64);
    expectError(patchU32(good, 53, 48), "metadata.general.alignment", 53, /power of two/);
    expectError(patchU32(good, 53, 0), "metadata.general.alignment", 53);
    expectError(patchU32(good, 49, T.INT32), "metadata.general.alignment", 53);
  });

  it("bad tensor infos: type, dims, offset, data past the end, duplicate names", () => {
    const good = oneTensor();
    expectError(patchU32(good, TYPE_AT, 99), "tensor t type", TYPE_AT, /unknown tensor type 99/);
    expectError(patchU32(good, N_DIMS_AT, 0), "tensor t n_dims", N_DIMS_AT);
    expectError(patchU32(good, N_DIMS_AT, 5), "tensor t n_dims", N_DIMS_AT);
    expectError(patchU64(good, DIMS_AT, 48n), "tensor t dims[0]", DIMS_AT, /multiple of 32/);
    expectError(patchU64(patchU64(good, DIMS_AT, 1n << 50n), DIMS_AT + 8, 1n << 10n), "tensor t dims", DIMS_AT + 8, /overflows/);
    expectError(patchU64(good, DIMS_AT + 8, 3n), "tensor t data", DATA_AT, /run past the end/);
    expectError(patchU64(good, OFFSET_AT, 1n), "tensor t offset", OFFSET_AT, /not aligned/);
    expectError(patchU64(good, OFFSET_AT, 1n << 40n), "tensor t offset", OFFSET_AT, /exceeds the limit/);
    const two = gguf([], ["a", "b"].map((name) => ({ name, dims: [4], type: GGMLType.F32, bytes: new Uint8Array(16) })));
    // Tensor "a" takes bytes 24..56 (name length, name, n_dims, one dim, type, offset): "b"'s length is at 57.
    two[65] = "a".charCodeAt(0);
    expectError(two, "tensor[1].name", 57, /duplicate tensor a/);
  });
});
