/**
 * Serializes metadata and tensors to a GGUF (v2 or v3) file, laid out as ggml's gguf writer does:
 * header, tensor infos, zero padding to the alignment, then each tensor's data padded to the
 * alignment. Invalid input (a value that does not fit its type, a tensor whose byte size does not
 * match its dims) throws a TypeError or RangeError naming the key or tensor.
 */
import { GGUFValueType, TYPE_LAYOUT, type GGMLType, type GGUFValue } from "./types.ts";

/** What a metadata value may be: a GGUFValue, or a plain number[] / bigint[] array. */
export type GGUFWritableValue = GGUFValue | number[] | bigint[] | GGUFWritableValue[];

export interface GGUFMetadataEntry {
  key: string;
  value: GGUFWritableValue;
  /** The value's type; inferred from the value when absent. */
  type?: GGUFValueType;
  /** For arrays: the elements' type; inferred from the elements when absent. */
  elementType?: GGUFValueType;
}

export interface GGUFTensorSpec {
  name: string;
  /** ggml order: dims[0] is the row length. */
  dims: number[];
  type: GGMLType;
  /** The tensor's blocks, exactly rowBytes(type, dims[0]) · (product of the other dims) bytes. */
  bytes: Uint8Array;
}

export interface GGUFWriteSpec {
  metadata: GGUFMetadataEntry[];
  tensors: GGUFTensorSpec[];
  /** Data alignment; written as general.alignment when not the default 32 and not in metadata. */
  alignment?: number;
  version?: 2 | 3;
}

const MAGIC = 0x46554747; // "GGUF"
const DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4;
const MAX_NAME_BYTES = 63; // ggml's GGML_MAX_NAME minus the terminator
const utf8 = new TextEncoder();

/** A growable little-endian byte buffer. Bytes at or past `length` are never written, so they are zero. */
class ByteWriter {
  private buf = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < at + n) size *= 2;
      const grown = new Uint8Array(size); // zero-filled: padding needs no explicit writes
      grown.set(this.buf.subarray(0, at));
      this.buf = grown;
      this.view = new DataView(grown.buffer);
    }
    this.length += n;
    return at;
  }

  // Each writer reserves first: reserve() may replace the buffer and its view.
  u8(v: number): void { const at = this.reserve(1); this.view.setUint8(at, v); }
  i8(v: number): void { const at = this.reserve(1); this.view.setInt8(at, v); }
  u16(v: number): void { const at = this.reserve(2); this.view.setUint16(at, v, true); }
  i16(v: number): void { const at = this.reserve(2); this.view.setInt16(at, v, true); }
  u32(v: number): void { const at = this.reserve(4); this.view.setUint32(at, v, true); }
  i32(v: number): void { const at = this.reserve(4); this.view.setInt32(at, v, true); }
  f32(v: number): void { const at = this.reserve(4); this.view.setFloat32(at, v, true); }
  f64(v: number): void { const at = this.reserve(8); this.view.setFloat64(at, v, true); }
  u64(v: bigint): void { const at = this.reserve(8); this.view.setBigUint64(at, v, true); }
  i64(v: bigint): void { const at = this.reserve(8); this.view.setBigInt64(at, v, true); }
  bytes(b: Uint8Array): void {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
  }
  padTo(alignment: number): void { this.reserve((alignment - (this.length % alignment)) % alignment); }

  /** A GGUF string: u64 byte length, then UTF-8 without terminator, encoded in place. */
  string(s: string): void {
    const at = this.reserve(8 + 3 * s.length); // UTF-8 takes at most 3 bytes per UTF-16 unit
    const { written } = utf8.encodeInto(s, this.buf.subarray(at + 8));
    this.view.setUint32(at, written, true); // the high word is still zero: strings are far below 4 GiB
    this.length = at + 8 + written; // gives back the unused reservation, untouched
  }

  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

type TypedArray =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array
  | Float32Array | Float64Array | BigUint64Array | BigInt64Array;

const TYPED_ARRAY_TYPES: [new (n: number) => TypedArray, GGUFValueType][] = [
  [Uint8Array, GGUFValueType.UINT8], [Int8Array, GGUFValueType.INT8],
  [Uint16Array, GGUFValueType.UINT16], [Int16Array, GGUFValueType.INT16],
  [Uint32Array, GGUFValueType.UINT32], [Int32Array, GGUFValueType.INT32],
  [Float32Array, GGUFValueType.FLOAT32], [Float64Array, GGUFValueType.FLOAT64],
  [BigUint64Array, GGUFValueType.UINT64], [BigInt64Array, GGUFValueType.INT64],
];

const INT_RANGES: Partial<Record<GGUFValueType, readonly [number, number]>> = {
  [GGUFValueType.UINT8]: [0, 0xff], [GGUFValueType.INT8]: [-0x80, 0x7f],
  [GGUFValueType.UINT16]: [0, 0xffff], [GGUFValueType.INT16]: [-0x8000, 0x7fff],
  [GGUFValueType.UINT32]: [0, 0xffffffff], [GGUFValueType.INT32]: [-0x80000000, 0x7fffffff],
};

const BIGINT_RANGES: Partial<Record<GGUFValueType, readonly [bigint, bigint]>> = {
  [GGUFValueType.UINT64]: [0n, (1n << 64n) - 1n],
  [GGUFValueType.INT64]: [-(1n << 63n), (1n << 63n) - 1n],
};

function typedArrayType(value: unknown): GGUFValueType | undefined {
  for (const [ctor, type] of TYPED_ARRAY_TYPES) if (value instanceof ctor) return type;
  return undefined;
}

function isArrayValue(value: unknown): value is ArrayLike<unknown> {
  return Array.isArray(value) || typedArrayType(value) !== undefined;
}

/** The narrowest sensible type of an integer: 32-bit unless it needs 64, unsigned unless negative. */
function integerType(min: number, max: number): GGUFValueType {
  if (min >= 0) return max <= 0xffffffff ? GGUFValueType.UINT32 : GGUFValueType.UINT64;
  return min >= -0x80000000 && max <= 0x7fffffff ? GGUFValueType.INT32 : GGUFValueType.INT64;
}

/** The type a value gets when none is given. */
export function inferValueType(value: GGUFWritableValue): GGUFValueType {
  switch (typeof value) {
    case "string": return GGUFValueType.STRING;
    case "boolean": return GGUFValueType.BOOL;
    case "bigint": return value < 0n ? GGUFValueType.INT64 : GGUFValueType.UINT64;
    case "number": return Number.isSafeInteger(value) ? integerType(value, value) : GGUFValueType.FLOAT32;
    default: return GGUFValueType.ARRAY;
  }
}

/**
 * The element type of an array when none is given: a typed array's own; for a plain array the
 * common type of its elements (numbers widen to one type fitting all of them). An empty plain array
 * is written as an empty string array: GGUF readers give back the same empty array.
 */
export function inferElementType(values: ArrayLike<unknown>, where: string): GGUFValueType {
  const typed = typedArrayType(values);
  if (typed !== undefined) return typed;
  const items = Array.from(values);
  if (items.length === 0) return GGUFValueType.STRING;
  const kinds = new Set(items.map((v) => (isArrayValue(v) ? "array" : typeof v)));
  if (kinds.size !== 1) throw new TypeError(`${where}: array mixes ${[...kinds].join(" and ")} elements`);
  const [kind] = kinds;
  switch (kind) {
    case "string": return GGUFValueType.STRING;
    case "boolean": return GGUFValueType.BOOL;
    case "array": return GGUFValueType.ARRAY;
    case "bigint": {
      const big = items as bigint[];
      return big.some((v) => v < 0n) ? GGUFValueType.INT64 : GGUFValueType.UINT64;
    }
    case "number": {
      const nums = items as number[];
      if (!nums.every(Number.isSafeInteger)) return GGUFValueType.FLOAT32;
      return integerType(Math.min(...nums), Math.max(...nums));
    }
    default: throw new TypeError(`${where}: ${kind} is not a GGUF value`);
  }
}

function writeValue(w: ByteWriter, type: GGUFValueType, value: unknown, where: string, elementType?: GGUFValueType): void {
  const intRange = INT_RANGES[type];
  if (intRange) {
    const n = typeof value === "bigint" ? Number(value) : value;
    if (typeof n !== "number" || !Number.isInteger(n) || n < intRange[0] || n > intRange[1]) {
      throw new RangeError(`${where}: ${String(value)} is not a ${GGUFValueType[type]}`);
    }
    writeInteger(w, type, n);
    return;
  }
  const bigRange = BIGINT_RANGES[type];
  if (bigRange) {
    const ok = typeof value === "bigint" || (typeof value === "number" && Number.isSafeInteger(value));
    const n = ok ? BigInt(value as number | bigint) : undefined;
    if (n === undefined || n < bigRange[0] || n > bigRange[1]) throw new RangeError(`${where}: ${String(value)} is not a ${GGUFValueType[type]}`);
    if (type === GGUFValueType.UINT64) w.u64(n);
    else w.i64(n);
    return;
  }
  switch (type) {
    case GGUFValueType.FLOAT32:
    case GGUFValueType.FLOAT64: {
      if (typeof value !== "number" && typeof value !== "bigint") throw new TypeError(`${where}: ${typeof value} is not a number`);
      if (type === GGUFValueType.FLOAT32) w.f32(Number(value));
      else w.f64(Number(value));
      return;
    }
    case GGUFValueType.BOOL:
      if (typeof value !== "boolean") throw new TypeError(`${where}: ${typeof value} is not a boolean`);
      w.u8(value ? 1 : 0);
      return;
    case GGUFValueType.STRING:
      if (typeof value !== "string") throw new TypeError(`${where}: ${typeof value} is not a string`);
      w.string(value);
      return;
    case GGUFValueType.ARRAY:
      writeArray(w, value, where, elementType);
      return;
    default:
      throw new RangeError(`${where}: unknown GGUF value type ${type}`);
  }
}

function writeInteger(w: ByteWriter, type: GGUFValueType, n: number): void {
  switch (type) {
    case GGUFValueType.UINT8: return w.u8(n);
    case GGUFValueType.INT8: return w.i8(n);
    case GGUFValueType.UINT16: return w.u16(n);
    case GGUFValueType.INT16: return w.i16(n);
    case GGUFValueType.UINT32: return w.u32(n);
    default: return w.i32(n);
  }
}

function writeArray(w: ByteWriter, value: unknown, where: string, elementType?: GGUFValueType): void {
  if (!isArrayValue(value)) throw new TypeError(`${where}: ${typeof value} is not an array`);
  const type = elementType ?? inferElementType(value, where);
  w.u32(type);
  w.u64(BigInt(value.length));
  if (typedArrayType(value) === type) {
    // Same layout in memory as in the file (little-endian platforms): copy the bytes.
    const typed = value as TypedArray;
    w.bytes(new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength));
    return;
  }
  if (type === GGUFValueType.STRING) {
    // Vocabularies: hundreds of thousands of strings, so no per-element error context unless needed.
    for (let i = 0; i < value.length; i++) {
      const s = value[i];
      if (typeof s !== "string") throw new TypeError(`${where}[${i}]: ${typeof s} is not a string`);
      w.string(s);
    }
    return;
  }
  for (let i = 0; i < value.length; i++) writeValue(w, type, value[i], `${where}[${i}]`);
}

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/** The metadata to write, with general.alignment added when `alignment` asks for it. */
function resolveAlignment(spec: GGUFWriteSpec): { alignment: number; metadata: GGUFMetadataEntry[] } {
  const declared = spec.metadata.find((e) => e.key === "general.alignment");
  const declaredValue = declared === undefined ? undefined : Number(declared.value);
  if (declared && !isPowerOfTwo(declaredValue!)) throw new RangeError(`general.alignment: ${String(declared.value)} is not a power of two`);
  if (spec.alignment !== undefined && !isPowerOfTwo(spec.alignment)) throw new RangeError(`alignment ${spec.alignment} is not a power of two`);
  if (declared && spec.alignment !== undefined && declaredValue !== spec.alignment) {
    throw new RangeError(`alignment ${spec.alignment} contradicts general.alignment = ${declaredValue}`);
  }
  const alignment = declaredValue ?? spec.alignment ?? DEFAULT_ALIGNMENT;
  const metadata = declared || alignment === DEFAULT_ALIGNMENT
    ? spec.metadata
    : [...spec.metadata, { key: "general.alignment", value: alignment, type: GGUFValueType.UINT32 }];
  return { alignment, metadata };
}

/** Checks a tensor's dims and type against its bytes. */
function validateTensor(t: GGUFTensorSpec): void {
  const where = `tensor ${t.name}`;
  const layout = TYPE_LAYOUT[t.type];
  if (!layout) throw new RangeError(`${where}: unknown tensor type ${t.type}`);
  if (utf8.encode(t.name).length > MAX_NAME_BYTES) throw new RangeError(`${where}: name longer than ${MAX_NAME_BYTES} bytes`);
  if (t.dims.length < 1 || t.dims.length > MAX_DIMS) throw new RangeError(`${where}: needs 1..${MAX_DIMS} dims, got ${t.dims.length}`);
  if (!t.dims.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new RangeError(`${where}: dims ${t.dims.join("×")} are not sizes`);
  if (t.dims[0]! % layout.blockSize !== 0) throw new RangeError(`${where}: ${layout.name} rows must be a multiple of ${layout.blockSize}`);
  const nElements = t.dims.reduce((a, b) => a * b, 1);
  const nBytes = (nElements / layout.blockSize) * layout.blockBytes;
  if (t.bytes.length !== nBytes) throw new RangeError(`${where}: ${t.dims.join("×")} ${layout.name} takes ${nBytes} bytes, got ${t.bytes.length}`);
}

function rejectDuplicates(names: string[], what: string): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) throw new RangeError(`duplicate ${what} ${name}`);
    seen.add(name);
  }
}

/** Serializes a whole GGUF file. */
export function writeGGUF(spec: GGUFWriteSpec): Uint8Array {
  const version = spec.version ?? 3;
  if (version !== 2 && version !== 3) throw new RangeError(`GGUF version ${String(version)} cannot be written (2 or 3)`);
  const { alignment, metadata } = resolveAlignment(spec);
  rejectDuplicates(metadata.map((e) => e.key), "metadata key");
  rejectDuplicates(spec.tensors.map((t) => t.name), "tensor");
  spec.tensors.forEach(validateTensor);

  const w = new ByteWriter();
  w.u32(MAGIC);
  w.u32(version);
  w.u64(BigInt(spec.tensors.length));
  w.u64(BigInt(metadata.length));
  for (const entry of metadata) {
    const type = entry.type ?? inferValueType(entry.value);
    w.string(entry.key);
    w.u32(type);
    writeValue(w, type, entry.value, entry.key, entry.elementType);
  }
  let offset = 0;
  const offsets = spec.tensors.map((t) => {
    const at = offset;
    offset += Math.ceil(t.bytes.length / alignment) * alignment;
    return at;
  });
  spec.tensors.forEach((t, i) => {
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(BigInt(d));
    w.u32(t.type);
    w.u64(BigInt(offsets[i]!));
  });
  w.padTo(alignment);

  const header = w.result();
  const file = new Uint8Array(header.length + offset); // zero-filled, so padding is zeros
  file.set(header);
  spec.tensors.forEach((t, i) => file.set(t.bytes, header.length + offsets[i]!));
  return file;
}
