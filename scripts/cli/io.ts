/** File helpers for the CLI that turn file-system failures into one-line messages. */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { parseGGUF, readGGUFHeader, type GGUFFile } from "../../kernels/gguf/reader.ts";
import { GGUFError, type GGUFHeader } from "../../kernels/gguf/types.ts";
import type { TensorBytes } from "../../kernels/model/model.ts";
import { CliError } from "./args.ts";

export function readInput(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(code === "ENOENT" ? `no such file: ${path}` : code === "EISDIR" ? `${path} is a directory` : `cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Reads and parses a GGUF file; a malformed file becomes a CliError naming the file and the problem. */
export function readGGUFFile(path: string): GGUFFile {
  const bytes = readInput(path);
  try {
    return parseGGUF(bytes);
  } catch (e) {
    if (e instanceof GGUFError) throw new CliError(`${path}: ${e.message}`);
    throw e;
  }
}

/** A GGUF model on disk: its header, and its tensors read one at a time on demand. */
export interface DiskModel {
  header: GGUFHeader;
  bytesOf: TensorBytes;
  close(): void;
}

/**
 * Opens a model without reading it whole: the header comes from a few reads, each tensor is read
 * when the backend loads it, so a backend that copies weights into its own memory (wasm) never
 * holds the file twice.
 */
export async function openDiskModel(path: string): Promise<DiskModel> {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(code === "ENOENT" ? `no such file: ${path}` : `cannot read ${path}: ${(e as Error).message}`);
  }
  const size = fstatSync(fd).size;
  const read = (offset: number, length: number, into?: Uint8Array) => {
    const out = into ?? new Uint8Array(length);
    const n = readSync(fd, out, 0, length, offset);
    return n === length ? out : out.subarray(0, n);
  };
  try {
    const header = await readGGUFHeader({ size, read: async (offset, length) => read(offset, length) });
    return { header, bytesOf: (t, into) => read(t.fileOffset, t.nBytes, into), close: () => closeSync(fd) };
  } catch (e) {
    closeSync(fd);
    if (e instanceof GGUFError) throw new CliError(`${path}: ${e.message}`);
    if ((e as NodeJS.ErrnoException).code === "EISDIR") throw new CliError(`${path} is a directory`);
    throw e;
  }
}
