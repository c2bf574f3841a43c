/** File helpers for the CLI that turn file-system failures into one-line messages. */
import { readFileSync } from "node:fs";
import { parseGGUF, type GGUFFile } from "../../kernels/gguf/reader.ts";
import { GGUFError } from "../../kernels/gguf/types.ts";
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
