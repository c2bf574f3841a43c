/** GGUF metadata value types, as numbered by the GGUF specification. */
export enum GGUFValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** ggml tensor types (ggml.h numbering). Only the ones Petrel reads are listed. */
export enum GGMLType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
}

/** Elements per block and bytes per block of each tensor type. */
export const TYPE_LAYOUT: Readonly<Record<number, { blockSize: number; blockBytes: number; name: string }>> = {
  [GGMLType.F32]: { blockSize: 1, blockBytes: 4, name: "F32" },
  [GGMLType.F16]: { blockSize: 1, blockBytes: 2, name: "F16" },
  [GGMLType.BF16]: { blockSize: 1, blockBytes: 2, name: "BF16" },
  [GGMLType.Q4_0]: { blockSize: 32, blockBytes: 18, name: "Q4_0" },
  [GGMLType.Q4_1]: { blockSize: 32, blockBytes: 20, name: "Q4_1" },
  [GGMLType.Q5_0]: { blockSize: 32, blockBytes: 22, name: "Q5_0" },
  [GGMLType.Q5_1]: { blockSize: 32, blockBytes: 24, name: "Q5_1" },
  [GGMLType.Q8_0]: { blockSize: 32, blockBytes: 34, name: "Q8_0" },
  [GGMLType.Q8_1]: { blockSize: 32, blockBytes: 36, name: "Q8_1" },
  [GGMLType.Q2_K]: { blockSize: 256, blockBytes: 84, name: "Q2_K" },
  [GGMLType.Q3_K]: { blockSize: 256, blockBytes: 110, name: "Q3_K" },
  [GGMLType.Q4_K]: { blockSize: 256, blockBytes: 144, name: "Q4_K" },
  [GGMLType.Q5_K]: { blockSize: 256, blockBytes: 176, name: "Q5_K" },
  [GGMLType.Q6_K]: { blockSize: 256, blockBytes: 210, name: "Q6_K" },
  [GGMLType.Q8_K]: { blockSize: 256, blockBytes: 292, name: "Q8_K" },
};

export function typeName(type: number): string {
  return TYPE_LAYOUT[type]?.name ?? `unknown(${type})`;
}

/** ggml type id from its name ("Q4_K", "f16", …); undefined when unknown. */
export function typeFromName(name: string): GGMLType | undefined {
  const upper = name.toUpperCase();
  for (const [id, layout] of Object.entries(TYPE_LAYOUT)) if (layout.name === upper) return Number(id);
  return undefined;
}

/** Bytes taken by one row of `n` elements of `type`; throws when n is not a whole number of blocks. */
export function rowBytes(type: number, n: number): number {
  const layout = TYPE_LAYOUT[type];
  if (!layout) throw new RangeError(`unknown tensor type ${type}`);
  if (n % layout.blockSize !== 0) throw new RangeError(`${layout.name} rows must be a multiple of ${layout.blockSize}, got ${n}`);
  return (n / layout.blockSize) * layout.blockBytes;
}

/** A metadata array: numeric arrays are typed arrays, string arrays are string[], nested arrays nest. */
export type GGUFArray =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array
  | Float32Array | Float64Array | BigUint64Array | BigInt64Array
  | boolean[] | string[] | GGUFArray[];

export type GGUFValue = number | bigint | boolean | string | GGUFArray;

export interface GGUFTensorInfo {
  name: string;
  /** ggml order: dims[0] is the row length (contiguous), dims[1] the number of rows, … */
  dims: number[];
  type: GGMLType;
  /** Offset from the start of the tensor data section. */
  offset: number;
  /** Absolute offset in the file. */
  fileOffset: number;
  nElements: number;
  nBytes: number;
}

export interface GGUFHeader {
  version: number;
  metadata: Map<string, GGUFValue>;
  /** Keys' value types, so that a writer can round-trip the file exactly. */
  metadataTypes: Map<string, GGUFValueType>;
  tensors: GGUFTensorInfo[];
  alignment: number;
  /** Absolute offset of the tensor data section. */
  dataOffset: number;
  /** Total size of the file in bytes. */
  fileSize: number;
}

/** A typed error for malformed GGUF input: names the field and the byte offset where it went wrong. */
export class GGUFError extends Error {
  constructor(
    readonly field: string,
    readonly offset: number,
    detail: string,
  ) {
    super(`GGUF: ${field} at offset ${offset}: ${detail}`);
    this.name = "GGUFError";
  }
}
