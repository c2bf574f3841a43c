import {
  GGUFError,
  GGUFValueType,
  TYPE_LAYOUT,
  type GGMLType,
  type GGUFArray,
  type GGUFHeader,
  type GGUFTensorInfo,
  type GGUFValue,
} from "./types.ts";

const MAGIC = 0x46554747; // "GGUF" little-endian
const DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4;
const MAX_ARRAY_DEPTH = 8;
const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: false });

// Sizes the parser reports for the objects it creates, beyond their payload (see ParseOptions).
const OBJECT_BYTES = 64;
const ARRAY_SLOT_BYTES = 8;

export interface ParseOptions {
  /**
   * Called with the (estimated) size of every allocation the parser makes, before making it:
   * typed-array copies, JS arrays (8 bytes a slot), strings, objects (64 bytes). Every size is
   * bounded by what the file's remaining bytes can back, so a corrupt count is refused before it
   * costs memory; the fuzz test uses this hook to prove it.
   */
  onAllocate?: (bytes: number) => void;
}

/** Thrown internally when the buffered prefix of a file ends before the header does. */
class NeedMoreBytes extends Error {}

/**
 * Reads the header of a GGUF file held (at least partly) in `buf`.
 * `fileSize` is the real file's size: reading past `buf` but inside the file asks for more bytes,
 * reading past the file is a GGUFError.
 */
class HeaderParser {
  private pos = 0;
  private readonly view: DataView;

  constructor(
    private readonly buf: Uint8Array,
    private readonly fileSize: number,
    private readonly options: ParseOptions,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** The single allocation helper: every allocation is announced here first. */
  private allocate(bytes: number): void {
    this.options.onAllocate?.(bytes);
  }

  private need(n: number, field: string): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.pos + n > this.fileSize) {
      throw new GGUFError(field, this.pos, `needs ${n} bytes but the file ends at ${this.fileSize}`);
    }
    throw new NeedMoreBytes();
  }

  private remaining(): number {
    return this.fileSize - this.pos;
  }

  u8(field: string): number { this.need(1, field); return this.view.getUint8(this.pos++); }
  i8(field: string): number { this.need(1, field); return this.view.getInt8(this.pos++); }
  u16(field: string): number { this.need(2, field); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  i16(field: string): number { this.need(2, field); const v = this.view.getInt16(this.pos, true); this.pos += 2; return v; }
  u32(field: string): number { this.need(4, field); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  i32(field: string): number { this.need(4, field); const v = this.view.getInt32(this.pos, true); this.pos += 4; return v; }
  f32(field: string): number { this.need(4, field); const v = this.view.getFloat32(this.pos, true); this.pos += 4; return v; }
  f64(field: string): number { this.need(8, field); const v = this.view.getFloat64(this.pos, true); this.pos += 8; return v; }
  u64(field: string): bigint { this.need(8, field); const v = this.view.getBigUint64(this.pos, true); this.pos += 8; return v; }
  i64(field: string): bigint { this.need(8, field); const v = this.view.getBigInt64(this.pos, true); this.pos += 8; return v; }

  /** A u64 used as a size or count: must be a safe integer no larger than `limit`. */
  count(field: string, limit: number): number {
    const at = this.pos;
    const v = this.u64(field);
    if (v > BigInt(limit)) throw new GGUFError(field, at, `value ${v} exceeds the limit ${limit} for this file`);
    return Number(v);
  }

  string(field: string): string {
    const len = this.count(`${field} length`, this.remaining() - 8);
    this.need(len, field);
    this.allocate(len + OBJECT_BYTES);
    const s = utf8.decode(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }

  value(type: number, field: string, typeAt: number, depth = 0): GGUFValue {
    switch (type) {
      case GGUFValueType.UINT8: return this.u8(field);
      case GGUFValueType.INT8: return this.i8(field);
      case GGUFValueType.UINT16: return this.u16(field);
      case GGUFValueType.INT16: return this.i16(field);
      case GGUFValueType.UINT32: return this.u32(field);
      case GGUFValueType.INT32: return this.i32(field);
      case GGUFValueType.FLOAT32: return this.f32(field);
      case GGUFValueType.FLOAT64: return this.f64(field);
      case GGUFValueType.BOOL: {
        const at = this.pos;
        const b = this.u8(field);
        if (b > 1) throw new GGUFError(field, at, `bool must be 0 or 1, got ${b}`);
        return b === 1;
      }
      case GGUFValueType.UINT64: return narrow(this.u64(field));
      case GGUFValueType.INT64: return narrow(this.i64(field));
      case GGUFValueType.STRING: return this.string(field);
      case GGUFValueType.ARRAY: return this.array(field, depth);
      default:
        throw new GGUFError(`${field} type`, typeAt, `unknown value type ${type}`);
    }
  }

  private array(field: string, depth: number): GGUFArray {
    if (depth >= MAX_ARRAY_DEPTH) throw new GGUFError(field, this.pos, `arrays nested deeper than ${MAX_ARRAY_DEPTH} levels`);
    const typeAt = this.pos;
    const elemType = this.u32(`${field} element type`);
    const minSize = MIN_VALUE_BYTES[elemType];
    if (minSize === undefined) throw new GGUFError(`${field} element type`, typeAt, `unknown value type ${elemType}`);
    // Every element takes at least minSize bytes: a count that cannot fit in the file is refused
    // before anything is allocated.
    const n = this.count(`${field} count`, Math.floor((this.remaining() - 8) / minSize));
    const fixed = FIXED_ARRAYS[elemType];
    if (fixed) {
      const bytes = n * fixed.BYTES_PER_ELEMENT;
      this.need(bytes, field);
      this.allocate(bytes + OBJECT_BYTES);
      const copy = this.buf.slice(this.pos, this.pos + bytes); // aligned copy for the typed array
      this.pos += bytes;
      return new fixed(copy.buffer, 0, n);
    }
    this.allocate(n * ARRAY_SLOT_BYTES + OBJECT_BYTES);
    const out: GGUFValue[] = new Array(n);
    if (elemType === GGUFValueType.STRING) {
      for (let i = 0; i < n; i++) out[i] = this.arrayString(field, i);
    } else {
      for (let i = 0; i < n; i++) out[i] = this.value(elemType, `${field}[${i}]`, typeAt, depth + 1);
    }
    return out as GGUFArray;
  }

  /**
   * A string in an array (vocabularies hold hundreds of thousands): decoded directly when it lies
   * wholly in the buffer, else by string(), which names the element in its errors.
   */
  private arrayString(field: string, i: number): string {
    const at = this.pos;
    if (at + 8 <= this.buf.length && this.view.getUint32(at + 4, true) === 0) {
      const len = this.view.getUint32(at, true);
      if (at + 8 + len <= this.buf.length) {
        this.allocate(len + OBJECT_BYTES);
        this.pos = at + 8 + len;
        return utf8.decode(this.buf.subarray(at + 8, this.pos));
      }
    }
    return this.string(`${field}[${i}]`);
  }

  /** general.alignment, when present: an unsigned integer power of two. */
  private alignment(metadata: Map<string, GGUFValue>, typeOf: Map<string, GGUFValueType>, valueAt: number): number {
    const declared = metadata.get("general.alignment");
    if (declared === undefined) return DEFAULT_ALIGNMENT;
    const type = typeOf.get("general.alignment");
    const unsigned = type === GGUFValueType.UINT8 || type === GGUFValueType.UINT16 || type === GGUFValueType.UINT32 || type === GGUFValueType.UINT64;
    if (!unsigned || typeof declared !== "number" || !isPowerOfTwo(declared)) {
      throw new GGUFError("metadata.general.alignment", valueAt, `must be an unsigned power of two, got ${String(declared)}`);
    }
    return declared;
  }

  header(): GGUFHeader {
    const magic = this.u32("magic");
    if (magic !== MAGIC) throw new GGUFError("magic", 0, `not a GGUF file (magic 0x${magic.toString(16).padStart(8, "0")})`);
    const versionAt = this.pos;
    const version = this.u32("version");
    if (version !== 2 && version !== 3) {
      const hint = version > 0xffff ? " (a big-endian file?)" : "";
      throw new GGUFError("version", versionAt, `unsupported GGUF version ${version}${hint} (supported: 2, 3)`);
    }
    // Each tensor info takes at least 32 bytes, each key/value pair at least 13.
    const nTensors = this.count("tensor_count", Math.floor(this.remaining() / 32));
    const nKV = this.count("metadata_kv_count", Math.floor(this.remaining() / 13));

    const metadata = new Map<string, GGUFValue>();
    const metadataTypes = new Map<string, GGUFValueType>();
    let alignmentAt = 0;
    for (let i = 0; i < nKV; i++) {
      const keyAt = this.pos;
      const key = this.string(`metadata[${i}].key`);
      if (metadata.has(key)) throw new GGUFError(`metadata[${i}].key`, keyAt, `duplicate key ${key}`);
      const typeAt = this.pos;
      const type = this.u32(`metadata.${key} type`);
      if (key === "general.alignment") alignmentAt = this.pos;
      this.allocate(OBJECT_BYTES);
      metadata.set(key, this.value(type, `metadata.${key}`, typeAt));
      metadataTypes.set(key, type);
    }
    const alignment = this.alignment(metadata, metadataTypes, alignmentAt);

    const infos: Omit<GGUFTensorInfo, "fileOffset">[] = [];
    const names = new Set<string>();
    for (let i = 0; i < nTensors; i++) {
      const nameAt = this.pos;
      const name = this.string(`tensor[${i}].name`);
      if (names.has(name)) throw new GGUFError(`tensor[${i}].name`, nameAt, `duplicate tensor ${name}`);
      names.add(name);
      infos.push(this.tensorInfo(name, alignment));
    }

    const dataOffset = Math.ceil(this.pos / alignment) * alignment;
    const tensors = infos.map((t) => {
      const fileOffset = dataOffset + t.offset;
      if (fileOffset + t.nBytes > this.fileSize) {
        throw new GGUFError(`tensor ${t.name} data`, fileOffset, `${t.nBytes} bytes run past the end of the file (${this.fileSize})`);
      }
      return { ...t, fileOffset };
    });
    return { version, metadata, metadataTypes, tensors, alignment, dataOffset, fileSize: this.fileSize };
  }

  private tensorInfo(name: string, alignment: number): Omit<GGUFTensorInfo, "fileOffset"> {
    const field = `tensor ${name}`;
    const dimsAt = this.pos;
    const nDims = this.u32(`${field} n_dims`);
    if (nDims < 1 || nDims > MAX_DIMS) throw new GGUFError(`${field} n_dims`, dimsAt, `must be 1..${MAX_DIMS}, got ${nDims}`);
    this.allocate(2 * OBJECT_BYTES + nDims * ARRAY_SLOT_BYTES);
    const dims: number[] = [];
    let nElements = 1;
    for (let d = 0; d < nDims; d++) {
      const at = this.pos;
      const dim = this.count(`${field} dims[${d}]`, Number.MAX_SAFE_INTEGER);
      nElements *= dim;
      if (!Number.isSafeInteger(nElements)) throw new GGUFError(`${field} dims`, at, "element count overflows");
      dims.push(dim);
    }
    const typeAt = this.pos;
    const type = this.u32(`${field} type`) as GGMLType;
    const layout = TYPE_LAYOUT[type];
    if (!layout) throw new GGUFError(`${field} type`, typeAt, `unknown tensor type ${type}`);
    if (dims[0]! % layout.blockSize !== 0) {
      throw new GGUFError(`${field} dims[0]`, dimsAt + 4, `${layout.name} rows must be a multiple of ${layout.blockSize}, got ${dims[0]}`);
    }
    const offsetAt = this.pos;
    const offset = this.count(`${field} offset`, this.fileSize);
    if (offset % alignment !== 0) throw new GGUFError(`${field} offset`, offsetAt, `${offset} is not aligned to ${alignment}`);
    const nBytes = (nElements / layout.blockSize) * layout.blockBytes;
    return { name, dims, type, offset, nElements, nBytes };
  }
}

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/** Smallest encoded size of one value of each type (used to bound array counts). */
const MIN_VALUE_BYTES: Record<number, number> = {
  [GGUFValueType.UINT8]: 1, [GGUFValueType.INT8]: 1, [GGUFValueType.BOOL]: 1,
  [GGUFValueType.UINT16]: 2, [GGUFValueType.INT16]: 2,
  [GGUFValueType.UINT32]: 4, [GGUFValueType.INT32]: 4, [GGUFValueType.FLOAT32]: 4,
  [GGUFValueType.UINT64]: 8, [GGUFValueType.INT64]: 8, [GGUFValueType.FLOAT64]: 8,
  [GGUFValueType.STRING]: 8, [GGUFValueType.ARRAY]: 12,
};

type TypedArrayCtor = { new (buf: ArrayBuffer, offset: number, length: number): GGUFArray; BYTES_PER_ELEMENT: number };
// Typed arrays are little-endian on every platform Petrel runs on (x86, ARM, WASM).
const FIXED_ARRAYS: Record<number, TypedArrayCtor> = {
  [GGUFValueType.UINT8]: Uint8Array, [GGUFValueType.INT8]: Int8Array,
  [GGUFValueType.UINT16]: Uint16Array, [GGUFValueType.INT16]: Int16Array,
  [GGUFValueType.UINT32]: Uint32Array, [GGUFValueType.INT32]: Int32Array,
  [GGUFValueType.FLOAT32]: Float32Array, [GGUFValueType.FLOAT64]: Float64Array,
  [GGUFValueType.UINT64]: BigUint64Array, [GGUFValueType.INT64]: BigInt64Array,
} as unknown as Record<number, TypedArrayCtor>;

function narrow(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

/** A GGUF file fully in memory. */
export interface GGUFFile extends GGUFHeader {
  bytes: Uint8Array;
}

/** Parses a whole GGUF file held in memory. Tensor data is not copied. */
export function parseGGUF(bytes: Uint8Array, options: ParseOptions = {}): GGUFFile {
  return { ...new HeaderParser(bytes, bytes.length, options).header(), bytes };
}

/** Random access to a file that may not be in memory (an R2 object read with range requests, a file handle). */
export interface RandomAccessSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/**
 * Reads only the header of a GGUF file from a random-access source: reads a prefix of
 * `firstRead` bytes and, while the header runs past it, doubles it by reading just the missing
 * part, so a large vocabulary costs a few reads and the tensor data none.
 */
export async function readGGUFHeader(source: RandomAccessSource, firstRead = 1 << 20, options: ParseOptions = {}): Promise<GGUFHeader> {
  let prefix = new Uint8Array(0);
  let length = Math.min(Math.max(firstRead, 64), source.size);
  for (;;) {
    options.onAllocate?.(length);
    const grown = new Uint8Array(length);
    grown.set(prefix);
    const tail = await source.read(prefix.length, length - prefix.length);
    if (tail.length !== length - prefix.length) {
      throw new GGUFError("header", prefix.length, `source returned ${tail.length} of ${length - prefix.length} bytes`);
    }
    grown.set(tail, prefix.length);
    prefix = grown;
    try {
      return new HeaderParser(prefix, source.size, options).header();
    } catch (e) {
      if (!(e instanceof NeedMoreBytes)) throw e;
      length = Math.min(length * 2, source.size);
    }
  }
}

/** Reads one tensor's raw bytes (its GGUF blocks) from a source. */
export function readTensorBytes(source: RandomAccessSource, tensor: GGUFTensorInfo): Promise<Uint8Array> {
  return source.read(tensor.fileOffset, tensor.nBytes);
}

/** A RandomAccessSource over bytes in memory. */
export function memorySource(bytes: Uint8Array): RandomAccessSource {
  return { size: bytes.length, read: async (offset, length) => bytes.subarray(offset, offset + length) };
}

/** The raw bytes of one tensor of an in-memory file (a view, not a copy). */
export function tensorBytes(file: GGUFFile, tensor: GGUFTensorInfo): Uint8Array {
  return file.bytes.subarray(tensor.fileOffset, tensor.fileOffset + tensor.nBytes);
}
