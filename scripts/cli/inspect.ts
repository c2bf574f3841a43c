/**
 * `petrel inspect FILE [--json]`: a GGUF file's metadata (long arrays summarized) and tensors,
 * read from the header alone, so that inspecting a multi-gigabyte model reads a few megabytes.
 */
import { open } from "node:fs/promises";
import { readGGUFHeader, type RandomAccessSource } from "../../kernels/gguf/reader.ts";
import { GGUFError, GGUFValueType, typeName, type GGUFHeader, type GGUFValue } from "../../kernels/gguf/types.ts";
import { inferElementType } from "../../kernels/gguf/writer.ts";
import { CliError, Flags, parseArgs } from "./args.ts";

const ARRAY_HEAD = 8; // values shown of an array
const TEXT_STRING_CHARS = 80; // characters shown of a long string in text output

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface ArraySummary {
  elementType: string;
  length: number;
  /** The first values (all of them when the array is short). */
  values: Json[];
}

export interface InspectReport {
  file: string;
  size: number;
  version: number;
  alignment: number;
  dataOffset: number;
  metadata: { key: string; type: string; value: Json | ArraySummary }[];
  tensors: { name: string; dims: number[]; type: string; bytes: number; offset: number }[];
  totals: { tensors: number; elements: number; bytes: number; byType: Record<string, { tensors: number; elements: number; bytes: number }> };
}

function valueTypeName(type: GGUFValueType): string {
  return (GGUFValueType[type] ?? `unknown(${type})`).toLowerCase();
}

/** The shortest decimal that reads back as the same float32 (1e-5, not 0.000009999999747378752). */
function shortestFloat32(v: number): number {
  for (let digits = 1; digits < 9; digits++) {
    const candidate = Number(v.toPrecision(digits));
    if (Math.fround(candidate) === v) return candidate;
  }
  return v;
}

/** A metadata value of `type` as JSON: bigints and non-finite floats as strings, arrays summarized. */
function toJson(value: GGUFValue, key: string, type: GGUFValueType): Json | ArraySummary {
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return String(value);
    return type === GGUFValueType.FLOAT32 ? shortestFloat32(value) : value;
  }
  if (typeof value === "string" || typeof value === "boolean") return value;
  const elementType = inferElementType(value, key);
  const head = Array.from(value as ArrayLike<GGUFValue>).slice(0, ARRAY_HEAD);
  return { elementType: valueTypeName(elementType), length: value.length, values: head.map((v) => toJson(v, key, elementType) as Json) };
}

export function describeHeader(header: GGUFHeader, file: string): InspectReport {
  const byType: InspectReport["totals"]["byType"] = {};
  const tensors = header.tensors.map((t) => {
    const type = typeName(t.type);
    const entry = (byType[type] ??= { tensors: 0, elements: 0, bytes: 0 });
    entry.tensors++;
    entry.elements += t.nElements;
    entry.bytes += t.nBytes;
    return { name: t.name, dims: t.dims, type, bytes: t.nBytes, offset: t.fileOffset };
  });
  return {
    file,
    size: header.fileSize,
    version: header.version,
    alignment: header.alignment,
    dataOffset: header.dataOffset,
    metadata: [...header.metadata].map(([key, value]) => ({
      key,
      type: valueTypeName(header.metadataTypes.get(key)!),
      value: toJson(value, key, header.metadataTypes.get(key)!),
    })),
    tensors,
    totals: {
      tensors: tensors.length,
      elements: header.tensors.reduce((a, t) => a + t.nElements, 0),
      bytes: header.tensors.reduce((a, t) => a + t.nBytes, 0),
      byType,
    },
  };
}

const count = (n: number) => n.toLocaleString("en-US");

function isSummary(v: Json | ArraySummary): v is ArraySummary {
  return typeof v === "object" && v !== null && !Array.isArray(v) && "elementType" in v;
}

function formatValue(v: Json | ArraySummary): string {
  if (isSummary(v)) {
    const more = v.length > v.values.length ? ", …" : "";
    return `${v.elementType}[${v.length}] [${v.values.map((x) => formatValue(x)).join(", ")}${more}]`;
  }
  if (typeof v === "string") {
    const shown = v.length > TEXT_STRING_CHARS ? `${v.slice(0, TEXT_STRING_CHARS)}…` : v;
    return JSON.stringify(shown) + (v.length > TEXT_STRING_CHARS ? ` (${v.length} chars)` : "");
  }
  return JSON.stringify(v);
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => `  ${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  ")}`.trimEnd());
}

export function formatReport(r: InspectReport): string {
  const lines = [
    `${r.file}: GGUF v${r.version}, ${count(r.size)} bytes, alignment ${r.alignment}, tensor data at ${count(r.dataOffset)}`,
    "",
    `metadata (${r.metadata.length} keys)`,
    ...(r.metadata.length ? table(r.metadata.map((m) => [m.key, m.type, formatValue(m.value)])) : []),
    "",
    `tensors (${r.tensors.length})`,
    ...table([
      ["name", "dims", "type", "bytes", "offset"],
      ...r.tensors.map((t) => [t.name, t.dims.join(" × "), t.type, count(t.bytes), count(t.offset)]),
    ]),
    "",
    `total: ${count(r.totals.tensors)} tensors, ${count(r.totals.elements)} elements, ${count(r.totals.bytes)} bytes`,
    ...Object.entries(r.totals.byType).map(([type, t]) => `  ${type}: ${count(t.tensors)} tensors, ${count(t.elements)} elements, ${count(t.bytes)} bytes`),
  ];
  return `${lines.join("\n")}\n`;
}

/** Reads a file's header through a file handle; file-system failures become one-line CliErrors. */
async function readHeader(path: string): Promise<GGUFHeader> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(code === "ENOENT" ? `no such file: ${path}` : `cannot open ${path}: ${(e as Error).message}`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new CliError(`${path} is not a file`);
    const source: RandomAccessSource = {
      size: stat.size,
      read: async (offset, length) => {
        const buf = new Uint8Array(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(buf, done, length - done, offset + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return buf.subarray(0, done);
      },
    };
    return await readGGUFHeader(source);
  } catch (e) {
    if (e instanceof GGUFError) throw new CliError(`${path}: ${e.message}`);
    if (e instanceof CliError) throw e;
    throw new CliError(`cannot read ${path}: ${(e as Error).message}`);
  } finally {
    await handle.close();
  }
}

export async function run(argv: string[]): Promise<void> {
  const flags = new Flags(parseArgs(argv, ["json"]), ["json"]);
  const [path, ...extra] = flags.positional;
  if (!path) throw new CliError("usage: petrel inspect FILE [--json]");
  if (extra.length > 0) throw new CliError(`unexpected argument '${extra[0]}' (usage: petrel inspect FILE [--json])`);
  const report = describeHeader(await readHeader(path), path);
  process.stdout.write(flags.bool("json") ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
}
