/**
 * llama.cpp's own tokenizer test vectors (models/ggml-vocab-*.gguf.inp/.out): every case of
 * every vocabulary must give exactly llama.cpp's ids (no BOS, special tokens not parsed).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { writeGGUF, type GGUFMetadataEntry } from "../kernels/gguf/writer.ts";
import { Tokenizer } from "../kernels/tokenizer/index.ts";
import { CliError } from "../scripts/cli/args.ts";
import { parseCases, run } from "../scripts/cli/tokenize.ts";
import { petrel } from "./helpers/cli.ts";

const VOCAB_DIR = new URL("./fixtures/vocab/", import.meta.url);
const VOCABS = ["bert-bge", "deepseek-coder", "gpt-2", "llama-spm", "mpt", "phi-3", "starcoder"] as const;
const CASES_PER_VOCAB = 46;

const vocabPath = (name: string, ext = "") => new URL(`ggml-vocab-${name}.gguf${ext}`, VOCAB_DIR).pathname;

describe.each(VOCABS)("llama.cpp vectors: %s", (name) => {
  const tokenizer = Tokenizer.fromMetadata(parseGGUF(new Uint8Array(readFileSync(vocabPath(name)))).metadata);
  const inputs = parseCases(readFileSync(vocabPath(name, ".inp"), "utf8"));
  const outLines = readFileSync(vocabPath(name, ".out"), "utf8").split("\n");
  const expected = outLines.slice(0, -1).map((line) => line.split(" ").filter(Boolean).map(Number));

  it(`has all ${CASES_PER_VOCAB} cases`, () => {
    expect(inputs).toHaveLength(CASES_PER_VOCAB);
    expect(expected).toHaveLength(CASES_PER_VOCAB);
    expect(outLines.at(-1)).toBe("");
  });

  it.each(inputs.map((text, i) => [i, JSON.stringify(text).slice(0, 40), text] as const))("case %i %s", (i, _label, text) => {
    expect(tokenizer.encode(text, { addSpecial: false, parseSpecial: false })).toEqual(expected[i]);
  });
});

/** Runs the tokenize command in-process and returns what it printed. */
async function tokenizeCli(...args: string[]): Promise<string> {
  const printed: string[] = [];
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    printed.push(String(chunk));
    return true;
  });
  try {
    await run(args);
  } finally {
    spy.mockRestore();
  }
  return printed.join("");
}

function writeTemp(name: string, metadata: GGUFMetadataEntry[]): string {
  const path = join(mkdtempSync(join(tmpdir(), "petrel-tokenize-")), name);
  writeFileSync(path, writeGGUF({ metadata, tensors: [] }));
  return path;
}

describe("petrel tokenize", () => {
  it("prints llama.cpp's .out format for --cases (through scripts/petrel)", () => {
    const r = petrel("tokenize", "--model", vocabPath("phi-3"), "--cases", vocabPath("phi-3", ".inp"));
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(readFileSync(vocabPath("phi-3", ".out"), "utf8"));
  });

  it("adds BOS only with --bos and parses specials only with --special", async () => {
    const model = vocabPath("llama-spm");
    const tokens = async (...args: string[]) => (JSON.parse(await tokenizeCli("--model", model, ...args, "--json")) as { tokens: number[] }).tokens;
    expect(await tokens("--text", "Hello")).toEqual([15043]);
    expect(await tokens("--text", "Hello", "--bos")).toEqual([1, 15043]);
    expect(await tokens("--text", "</s>")).not.toContain(2);
    expect(await tokens("--text", "</s>", "--special")).toEqual([2]);
    const file = writeTemp("text.txt", []);
    writeFileSync(file, "Hello");
    expect(await tokens("--text-file", file)).toEqual([15043]);
  });

  it("rejects bad input with a clear CliError", async () => {
    const noTokenizer = writeTemp("bare.gguf", [{ key: "general.architecture", value: "llama" }]);
    const unknownModel = writeTemp("odd.gguf", [
      { key: "tokenizer.ggml.model", value: "sentencepiece-unigram-9" },
      { key: "tokenizer.ggml.tokens", value: ["a", "b"] },
    ]);
    const cases: Array<[string[], RegExp]> = [
      [["--model", "/nonexistent.gguf", "--text", "x"], /no such file/],
      [["--model", vocabPath("llama-spm", ".inp"), "--text", "x"], /GGUF/],
      [["--model", noTokenizer, "--text", "x"], /no tokenizer\.ggml\.model/],
      [["--model", unknownModel, "--text", "x"], /unknown tokenizer model 'sentencepiece-unigram-9'/],
      [["--model", vocabPath("llama-spm")], /exactly one of --text, --text-file or --cases/],
      [["--model", vocabPath("llama-spm"), "--text-file", "/nonexistent.txt"], /no such file/],
      [["--text", "x"], /--model is required/],
    ];
    for (const [args, message] of cases) {
      const failure = run(args);
      await expect(failure).rejects.toBeInstanceOf(CliError);
      await expect(failure).rejects.toThrow(message);
    }
  });
});
