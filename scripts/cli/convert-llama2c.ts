/** `petrel convert-llama2c IN.bin OUT.gguf`: a llama2.c checkpoint as a GGUF llama model. */
import { writeFileSync } from "node:fs";
import { basename } from "node:path";
import { convertLlama2c } from "../lib/llama2c.ts";
import { CliError, Flags, parseArgs } from "./args.ts";
import { readInput } from "./io.ts";

export async function run(argv: string[]): Promise<void> {
  const flags = new Flags(parseArgs(argv), []);
  const [input, output] = flags.positional;
  if (!input || !output || flags.positional.length !== 2) throw new CliError("usage: petrel convert-llama2c IN.bin OUT.gguf");
  const gguf = convertLlama2c(readInput(input), basename(input));
  writeFileSync(output, gguf);
  process.stderr.write(`wrote ${output} (${gguf.length} bytes)\n`);
}
