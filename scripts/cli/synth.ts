/**
 * `petrel synth --out FILE --arch llama|qwen2 --embd N --layers N --heads N --kv-heads N --ff N
 * [--vocab-from VOCAB.gguf | --vocab N] --type f32|f16|q8_0|q4_0|q4_k|q6_k [--embd-type T] [--output-type T]
 * [--ctx N] [--tied] --seed S`
 */
import { writeFileSync } from "node:fs";
import { typeFromName, type GGMLType } from "../../kernels/gguf/types.ts";
import { synthesize } from "../lib/synth.ts";
import { CliError, Flags, parseArgs } from "./args.ts";
import { readGGUFFile } from "./io.ts";

const OPTIONS = ["out", "arch", "embd", "layers", "heads", "kv-heads", "ff", "vocab-from", "vocab", "type", "embd-type", "output-type", "ctx", "tied", "seed"];

function tensorType(flags: Flags, name: string): GGMLType | undefined {
  const raw = flags.string(name);
  if (raw === undefined) return undefined;
  const type = typeFromName(raw);
  if (type === undefined) throw new CliError(`--${name}: unknown tensor type '${raw}'`);
  return type;
}

export async function run(argv: string[]): Promise<void> {
  const flags = new Flags(parseArgs(argv, ["tied"]), OPTIONS);
  const arch = flags.string("arch") ?? "llama";
  if (arch !== "llama" && arch !== "qwen2") throw new CliError(`--arch must be llama or qwen2, got '${arch}'`);
  const int = (name: string) => flags.number(name, { integer: true, min: 1 });
  const vocabFrom = flags.string("vocab-from");
  if (vocabFrom !== undefined && flags.has("vocab")) throw new CliError("give --vocab-from or --vocab, not both");
  const out = flags.requireString("out");
  const nHead = int("heads") ?? 4;
  const bytes = synthesize({
    arch,
    nEmbd: int("embd") ?? 256,
    nLayer: int("layers") ?? 2,
    nHead,
    nHeadKv: int("kv-heads") ?? nHead,
    nFf: int("ff") ?? 512,
    type: tensorType(flags, "type") ?? typeFromName("f32")!,
    embdType: tensorType(flags, "embd-type"),
    outputType: tensorType(flags, "output-type"),
    vocab: vocabFrom !== undefined ? readGGUFFile(vocabFrom) : (int("vocab") ?? 512),
    nCtx: int("ctx"),
    tiedOutput: flags.bool("tied"),
    seed: flags.number("seed", { integer: true, min: 0 }) ?? 0,
  });
  writeFileSync(out, bytes);
  process.stderr.write(`wrote ${out} (${bytes.length} bytes)\n`);
}
