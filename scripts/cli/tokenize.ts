/**
 * `petrel tokenize --model FILE (--text S | --text-file F) [--bos] [--special] [--json]`
 *   prints the token ids (`{"tokens":[…]}` with --json). --bos adds the special tokens the
 *   vocabulary asks for (BOS, and EOS/SEP where it adds them); --special parses control tokens
 *   written in the text.
 * `petrel tokenize --model FILE --cases F.inp`
 *   llama.cpp's test-vector format: inputs each followed by a line `__ggml_vocab_test__`; prints
 *   one line of ids per input, without BOS and without parsing special tokens.
 */
import { Tokenizer, TokenizerError } from "../../kernels/tokenizer/index.ts";
import { CliError, Flags, parseArgs } from "./args.ts";
import { readGGUFFile, readInput } from "./io.ts";

const OPTIONS = ["model", "text", "text-file", "cases", "bos", "special", "json"];
const CASE_END = "\n__ggml_vocab_test__\n";

function loadTokenizer(path: string): Tokenizer {
  const file = readGGUFFile(path);
  try {
    return Tokenizer.fromMetadata(file.metadata);
  } catch (e) {
    if (e instanceof TokenizerError) throw new CliError(`${path}: ${e.message}`);
    throw e;
  }
}

function readText(path: string): string {
  return new TextDecoder().decode(readInput(path));
}

/** The inputs of a .inp file: every text followed by the separator line. */
export function parseCases(content: string): string[] {
  const cases: string[] = [];
  let pos = 0;
  for (let end = content.indexOf(CASE_END, pos); end >= 0; end = content.indexOf(CASE_END, pos)) {
    cases.push(content.slice(pos, end));
    pos = end + CASE_END.length;
  }
  return cases;
}

export async function run(argv: string[]): Promise<void> {
  const flags = new Flags(parseArgs(argv, ["bos", "special", "json"]), OPTIONS);
  const tokenizer = loadTokenizer(flags.requireString("model"));

  const casesPath = flags.string("cases");
  if (casesPath !== undefined) {
    if (flags.has("text") || flags.has("text-file")) throw new CliError("--cases cannot be combined with --text or --text-file");
    const lines = parseCases(readText(casesPath)).map((text) =>
      tokenizer.encode(text, { addSpecial: false, parseSpecial: false }).map((id) => ` ${id}`).join(""),
    );
    process.stdout.write(lines.map((line) => `${line}\n`).join(""));
    return;
  }

  const inline = flags.string("text");
  const textFile = flags.string("text-file");
  if ((inline === undefined) === (textFile === undefined)) throw new CliError("give exactly one of --text, --text-file or --cases");
  const text = inline ?? readText(textFile!);
  const tokens = tokenizer.encode(text, { addSpecial: flags.bool("bos"), parseSpecial: flags.bool("special") });
  process.stdout.write(flags.bool("json") ? `${JSON.stringify({ tokens })}\n` : `${tokens.join(" ")}\n`);
}
