/**
 * Multi-file models as llama.cpp's `gguf-split` writes them: `NAME-00001-of-0000N.gguf` …, each a
 * GGUF file of its own with `split.no` (0-based), `split.count` and `split.tensors.count` in its
 * metadata; the first file carries the model's metadata, every file a share of the tensors.
 * `mergeSplits` joins the headers into one tensor index that remembers each tensor's file, so a
 * loader reads any tensor from the right file with a range request.
 */
import { GGUFError, GGUFValueType, type GGUFHeader, type GGUFTensorInfo } from "./types.ts";
import type { GGUFFile } from "./reader.ts";
import { writeGGUF, type GGUFMetadataEntry } from "./writer.ts";

const SPLIT_RE = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

export const SPLIT_KEYS = { no: "split.no", count: "split.count", tensors: "split.tensors.count" } as const;

/** `NAME-0000i-of-0000n.gguf` for split i (1-based) of n. */
export function splitFileName(prefix: string, no: number, count: number): string {
  return `${prefix}-${String(no).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.gguf`;
}

/** The prefix, 1-based number and count a split file's name states; undefined for other names. */
export function parseSplitName(path: string): { prefix: string; no: number; count: number } | undefined {
  const m = SPLIT_RE.exec(path);
  if (!m) return undefined;
  const no = Number(m[2]);
  const count = Number(m[3]);
  return no >= 1 && no <= count ? { prefix: m[1]!, no, count } : undefined;
}

/** The names of every file of the split `first` belongs to, in order (just `first` when it is not a split). */
export function splitFileNames(first: string): string[] {
  const s = parseSplitName(first);
  if (!s) return [first];
  return Array.from({ length: s.count }, (_, i) => splitFileName(s.prefix, i + 1, s.count));
}

/** A tensor index over several files: `header` as if one file, `fileOf` which file holds each tensor. */
export interface SplitModel {
  header: GGUFHeader;
  fileOf: Map<GGUFTensorInfo, number>;
}

function splitNumber(header: GGUFHeader, key: string, file: number): number | undefined {
  const v = header.metadata.get(key);
  if (v === undefined) return undefined;
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0) throw new GGUFError(key, 0, `file ${file + 1} of the split has a malformed ${key}`);
  return n;
}

/**
 * Joins the headers of a split's files (in order) into one index. A single header without split
 * metadata is a plain model. Refuses files out of order, missing, or whose tensor counts disagree.
 */
export function mergeSplits(headers: readonly GGUFHeader[]): SplitModel {
  if (headers.length === 0) throw new RangeError("no GGUF files given");
  const count = splitNumber(headers[0]!, SPLIT_KEYS.count, 0) ?? 1;
  if (count !== headers.length) throw new GGUFError(SPLIT_KEYS.count, 0, `the split has ${count} files, ${headers.length} given`);
  const fileOf = new Map<GGUFTensorInfo, number>();
  const tensors: GGUFTensorInfo[] = [];
  headers.forEach((h, i) => {
    const no = splitNumber(h, SPLIT_KEYS.no, i) ?? 0;
    if (no !== i) throw new GGUFError(SPLIT_KEYS.no, 0, `file ${i + 1} of the split says it is number ${no + 1}`);
    for (const t of h.tensors) {
      fileOf.set(t, i);
      tensors.push(t);
    }
  });
  const expected = splitNumber(headers[0]!, SPLIT_KEYS.tensors, 0);
  if (expected !== undefined && expected !== tensors.length) {
    throw new GGUFError(SPLIT_KEYS.tensors, 0, `the split should hold ${expected} tensors, its files hold ${tensors.length}`);
  }
  const names = new Set(tensors.map((t) => t.name));
  if (names.size !== tensors.length) throw new GGUFError("tensors", 0, "a tensor appears in more than one file of the split");
  return { header: { ...headers[0]!, tensors }, fileOf };
}

/**
 * Writes a model as `count` split files the way gguf-split does: tensors in order, cut into
 * groups of about equal bytes; the first file keeps all metadata, the others only the split keys.
 */
export function writeSplit(file: GGUFFile, count: number): Uint8Array[] {
  if (!Number.isInteger(count) || count < 1 || count > file.tensors.length) {
    throw new RangeError(`split count must be an integer between 1 and the ${file.tensors.length} tensors, got ${count}`);
  }
  const total = file.tensors.reduce((n, t) => n + t.nBytes, 0);
  const groups: GGUFTensorInfo[][] = [[]];
  let bytes = 0;
  file.tensors.forEach((t, i) => {
    const groupsLeft = count - groups.length;
    // A new file once this one has its share of the bytes, or when every later tensor must open one.
    if (groups.at(-1)!.length > 0 && groupsLeft > 0 && (bytes >= (total * groups.length) / count || file.tensors.length - i === groupsLeft)) groups.push([]);
    groups.at(-1)!.push(t);
    bytes += t.nBytes;
  });
  const model: GGUFMetadataEntry[] = [...file.metadata]
    .filter(([key]) => !key.startsWith("split."))
    .map(([key, value]) => ({ key, value, type: file.metadataTypes.get(key) }));
  return groups.map((tensors, i) => {
    const split: GGUFMetadataEntry[] = [
      { key: SPLIT_KEYS.no, value: i, type: GGUFValueType.UINT16 },
      { key: SPLIT_KEYS.count, value: count, type: GGUFValueType.UINT16 },
      { key: SPLIT_KEYS.tensors, value: file.tensors.length, type: GGUFValueType.INT32 },
    ];
    return writeGGUF({
      metadata: i === 0 ? [...model, ...split] : split,
      tensors: tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, bytes: file.bytes.subarray(t.fileOffset, t.fileOffset + t.nBytes) })),
      alignment: file.alignment,
    });
  });
}
