/** Pre-tokenizers: every name llama.cpp knows builds and partitions text; known splits hold. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { byteEncodeCodepoint, charByte } from "../kernels/tokenizer/byte-level.ts";
import {
  DIGIT_GROUPS_FROM_END_REGEX,
  DIGIT_TRIPLES_AHEAD_REGEX,
  GPT2_REGEX,
  LLAMA3_REGEX,
  preTokenizerNames,
  preTokenizerSpec,
} from "../kernels/tokenizer/pre-types.ts";
import { PreTokenizer } from "../kernels/tokenizer/pretokenize.ts";
import { codepointsOf, Cpt, cptFlags } from "../kernels/tokenizer/unicode.ts";

function byteLevel(text: string): string {
  const out: string[] = [];
  for (const cp of codepointsOf(text)) byteEncodeCodepoint(cp, out);
  return out.join("");
}

function preTokenizer(name: string): PreTokenizer {
  const spec = preTokenizerSpec(name);
  if (!spec) throw new Error(`no pre-tokenizer ${name}`);
  return new PreTokenizer(spec.regexes, spec.byteEncode);
}

/** Words as plain text (byte-level words turned back into their bytes) for readable expectations. */
function words(name: string, text: string): string[] {
  const split = preTokenizer(name).split(text);
  if (!preTokenizerSpec(name)!.byteEncode) return split;
  return split.map((w) => new TextDecoder().decode(Uint8Array.from(Array.from(w, (c) => charByte(c)!))));
}

const MIXED =
  "Hello World! I've 12345 apples, 'RE you sure?\n\n\t  Ünïcödé ÀÉÎ straße ½ ⅷ 你好世界 こんにちは 한국어 " +
  "مرحبا 😀👍🏽 <sentinel:12> IMGIMGABZ a.b,c!d… 3.14159 ١٢٣ \u00a0\u2003x\u3000y \r\n end  ";

const TEXT_UNIT = fc.oneof(
  fc.string({ unit: "binary", maxLength: 4 }),
  fc.constantFrom(" ", "  ", "\n", "\r\n", "\t", "'s", "'RE", "123", "4567", "Ab", "aB", "é", "e\u0301", "你", "😀", ".", "?!", "\u00a0", "\u0085"),
);
const TEXT = fc.string({ unit: TEXT_UNIT, maxLength: 24 });

describe("codepoint classes", () => {
  it("match llama.cpp's unicode tables", () => {
    const { NUMBER, LETTER, SEPARATOR, ACCENT_MARK, PUNCTUATION, SYMBOL, CONTROL, UNDEFINED, WHITESPACE } = Cpt;
    // Spot checks against llama.cpp's unicode-data.cpp (ranges and whitespace set).
    const expected: Array<[number, number]> = [
      [0x00, CONTROL], [0x09, CONTROL | WHITESPACE], [0x1c, CONTROL], [0x20, SEPARATOR | WHITESPACE], [0x21, PUNCTUATION],
      [0x24, SYMBOL], [0x2b, SYMBOL], [0x30, NUMBER], [0x41, LETTER], [0x5e, SYMBOL], [0x5f, PUNCTUATION], [0x60, SYMBOL],
      [0x7f, CONTROL], [0x85, CONTROL | WHITESPACE], [0xa0, SEPARATOR | WHITESPACE], [0xaa, LETTER], [0xad, CONTROL],
      [0xb2, NUMBER], [0xb5, LETTER], [0xd7, SYMBOL], [0x300, ACCENT_MARK], [0x378, UNDEFINED], [0x37e, PUNCTUATION],
      [0x600, CONTROL], [0x1680, SEPARATOR | WHITESPACE], [0x180e, CONTROL], [0x2028, SEPARATOR | WHITESPACE],
      [0x3000, SEPARATOR | WHITESPACE], [0x4e00, LETTER], [0xd800, CONTROL], [0xe000, CONTROL], [0xfeff, CONTROL],
      [0xfffe, UNDEFINED], [0x1f600, SYMBOL], [0xe0001, CONTROL], [0x10fffe, UNDEFINED],
    ];
    for (const [cp, flags] of expected) expect([cp, cptFlags(cp)]).toEqual([cp, flags]);
  });
});

describe("pre-tokenizers", () => {
  it("knows llama.cpp's names", () => {
    const names = preTokenizerNames();
    for (const name of ["default", "llama3", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "deepseek-v3", "falcon", "starcoder", "mpt", "refact", "command-r", "smollm", "stablelm2", "olmo", "dbrx", "smaug-bpe", "poro-chat", "jais", "tekken", "chatglm-bpe", "viking", "gpt-4o", "bloom", "gpt3-finnish", "exaone", "chameleon", "minerva-7b", "codeshell", "gpt-2", "kimi-k2", "superbpe", "afmoe", "tiny_aya", "gemma4", "whitespace"]) {
      expect(names).toContain(name);
    }
    expect(preTokenizerSpec("no-such-pre")).toBeUndefined();
    expect(preTokenizerSpec(undefined)).toBe(preTokenizerSpec("default"));
  });

  it.each(preTokenizerNames())("%s builds and cuts text into pieces that join back", (name) => {
    const spec = preTokenizerSpec(name)!;
    const pre = preTokenizer(name);
    const join = (text: string) => (spec.byteEncode ? byteLevel(text) : text);
    expect(pre.split(MIXED).join("")).toBe(join(MIXED));
    fc.assert(fc.property(TEXT, (text) => pre.split(text).join("") === join(text)), { numRuns: 40 });
  });

  it("GPT-2 keeps a space with the word that follows and splits contractions", () => {
    expect(words("gpt-2", "Hello world, I'm   here")).toEqual(["Hello", " world", ",", " I", "'m", "  ", " here"]);
  });

  it("Llama 3 groups digits by three and folds contraction case", () => {
    expect(words("llama3", "12345 I'RE")).toEqual(["123", "45", " I", "'RE"]);
  });

  it("GPT-4o separates case runs the way llama.cpp's collapsed regex does", () => {
    expect(words("gpt-4o", "HelloWorld XMLHttp")).toEqual(["Hello", "World", " XMLHttp"]);
  });

  it("DeepSeek-V3 splits digits, Han and kana runs", () => {
    expect(words("deepseek-v3", "abc12345你好カナ")).toEqual(["abc", "123", "45", "你好カナ"]);
  });

  it("superbpe cuts digit runs at positions that leave groups of three (empty lookahead matches)", () => {
    expect(words("superbpe", "1234567").filter((w) => w !== "")).toEqual(["1", "234", "567"]);
  });

  it("the linear digit splitters agree with the lookahead regexes they replace", () => {
    const digitsText = fc.string({ unit: fc.constantFrom("1", "2", "3", "a", "_", " ", ".", "é", "\u0661", "\n"), maxLength: 40 });
    for (const regex of [DIGIT_TRIPLES_AHEAD_REGEX, DIGIT_GROUPS_FROM_END_REGEX]) {
      const linear = new PreTokenizer([regex], false);
      const engine = new PreTokenizer([`(?:${regex})`], false);
      fc.assert(fc.property(digitsText, (text) => JSON.stringify(linear.split(text)) === JSON.stringify(engine.split(text))), { numRuns: 500 });
    }
  });

  it("stays fast on long runs", () => {
    const specs = new Set(preTokenizerNames().map((name) => preTokenizerSpec(name)!));
    for (const spec of specs) {
      const pre = new PreTokenizer(spec.regexes, spec.byteEncode);
      for (const run of ["7", "a", "A", " ", "\n", "é", "😀", "'s", " .", "1 "]) {
        const started = performance.now();
        pre.split(run.repeat(Math.ceil(10_000 / run.length)));
        expect(performance.now() - started).toBeLessThan(1_000);
      }
    }
  });

  it("the hand-written GPT-2 and Llama 3 splitters agree with the regex engine on ASCII text", () => {
    const ascii = fc.string({ unit: fc.constantFrom("a", "Z", "1", " ", "  ", "\n", "\r", "\t", "'", "'s", "'ll", ".", "!", "-", "é"), maxLength: 30 });
    const viaRegex = (regex: string) => new PreTokenizer([`(?:${regex})`], true);
    for (const regex of [GPT2_REGEX, LLAMA3_REGEX]) {
      const custom = new PreTokenizer([regex], true);
      const general = viaRegex(regex);
      fc.assert(fc.property(ascii, (text) => JSON.stringify(custom.split(text)) === JSON.stringify(general.split(text))), { numRuns: 300 });
    }
  });
});
