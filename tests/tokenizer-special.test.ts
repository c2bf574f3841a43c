/** Special tokens, BOS/EOS rules, metadata errors and decoding details. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import type { GGUFValue } from "../kernels/gguf/types.ts";
import { Tokenizer, TokenizerError } from "../kernels/tokenizer/index.ts";

const load = (name: string) =>
  Tokenizer.fromMetadata(parseGGUF(new Uint8Array(readFileSync(new URL(`./fixtures/vocab/ggml-vocab-${name}.gguf`, import.meta.url)))).metadata);

const llama = load("llama-spm");
const phi3 = load("phi-3");
const gpt2 = load("gpt-2");
const bert = load("bert-bge");
const deepseek = load("deepseek-coder");

const CONTROL = 3;
const USER_DEFINED = 4;
const BYTE = 6;

/** A small SPM vocabulary: byte tokens, a few pieces, and special tokens of the given types. */
function spmVocab(extra: Record<string, GGUFValue> = {}, specials: Array<[string, number]> = []): Map<string, GGUFValue> {
  const tokens = ["<unk>", "<s>", "</s>", ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`)];
  const types = [2, CONTROL, CONTROL, ...new Array<number>(256).fill(BYTE)];
  for (const piece of ["▁", "a", "b", "c", "d", "x", "▁a", "▁x"]) {
    tokens.push(piece);
    types.push(1);
  }
  for (const [text, type] of specials) {
    tokens.push(text);
    types.push(type);
  }
  const scores = Float32Array.from(tokens, (_, i) => -i);
  return new Map<string, GGUFValue>([
    ["tokenizer.ggml.model", "llama"],
    ["tokenizer.ggml.tokens", tokens],
    ["tokenizer.ggml.scores", scores],
    ["tokenizer.ggml.token_type", Int32Array.from(types)],
    ...Object.entries(extra),
  ]);
}

function bpeVocab(extra: Record<string, GGUFValue> = {}): Map<string, GGUFValue> {
  return new Map<string, GGUFValue>([
    ["tokenizer.ggml.model", "gpt2"],
    ["tokenizer.ggml.pre", "gpt-2"],
    ["tokenizer.ggml.tokens", ["a", "b", "ab", "Ġ", "Ġab"]],
    ["tokenizer.ggml.merges", ["a b", "Ġ ab"]],
    ...Object.entries(extra),
  ]);
}

describe("BOS, EOS and SEP", () => {
  it("follow each model's defaults", () => {
    expect(llama.encode("Hello")).toEqual([1, 15043]);
    expect(llama.encode("Hello", { addSpecial: false })).toEqual([15043]);
    expect(gpt2.encode("Hello")).toEqual([15496]); // byte-level BPE adds no BOS unless asked
    expect(deepseek.encode("Hello")[0]).toBe(32013); // tokenizer.ggml.add_bos_token
    const hello = bert.encode("Hello", { addSpecial: false });
    expect(bert.encode("Hello")).toEqual([101, ...hello, 102]); // BERT: [CLS] … [SEP]
    expect(bert.encode("")).toEqual([101, 102]);
    expect(llama.encode("")).toEqual([1]);
  });

  it("follow the metadata", () => {
    const eos = Tokenizer.fromMetadata(spmVocab({ "tokenizer.ggml.add_bos_token": false, "tokenizer.ggml.add_eos_token": true }));
    expect(eos.encode("a")).toEqual([eos.encode("a", { addSpecial: false })[0], 2]);
    const bpe = Tokenizer.fromMetadata(bpeVocab({ "tokenizer.ggml.bos_token_id": 0, "tokenizer.ggml.add_bos_token": true }));
    expect(bpe.encode("ab ab")).toEqual([0, 2, 4]);
  });

  it("must exist when the vocabulary adds them", () => {
    expect(() => Tokenizer.fromMetadata(bpeVocab({ "tokenizer.ggml.add_bos_token": true }))).toThrow(/add_bos_token is true, but tokenizer\.ggml\.bos_token_id is not set/);
  });

  it("are exposed with end-of-generation tokens", () => {
    expect([llama.bos, llama.eos, llama.eot]).toEqual([1, 2, undefined]);
    expect(llama.isEog(2)).toBe(true);
    expect(llama.isEog(15043)).toBe(false);
    expect(gpt2.isEog(50256)).toBe(true);
    expect(phi3.eos).toBe(32000);
    expect(phi3.eot).toBe(32007); // "<|end|>", recognized by its text
    expect(phi3.isEog(32007)).toBe(true);
  });
});

describe("special tokens in the text", () => {
  it("are parsed only with parseSpecial (control tokens)", () => {
    expect(llama.encode("<s>Hi</s>", { addSpecial: false, parseSpecial: true })).toEqual([1, ...llama.encode("Hi", { addSpecial: false }), 2]);
    expect(llama.encode("<s>Hi</s>", { addSpecial: false })).not.toContain(1);
  });

  it("are always cut out when user-defined", () => {
    const t = Tokenizer.fromMetadata(spmVocab({}, [["<u>", USER_DEFINED]]));
    const u = t.vocabSize - 1;
    expect(t.encode("a<u>a", { addSpecial: false })).toEqual([...t.encode("a", { addSpecial: false }), u, ...t.encode("a", { addSpecial: false })]);
  });

  it("are matched longest token first over the whole text, not leftmost first", () => {
    const t = Tokenizer.fromMetadata(spmVocab({}, [["ab", CONTROL], ["bcd", CONTROL]]));
    const [ab, bcd] = [t.vocabSize - 2, t.vocabSize - 1];
    expect(t.encode("abcd", { addSpecial: false, parseSpecial: true })).toEqual([...t.encode("a", { addSpecial: false }), bcd]);
    expect(t.encode("abc", { addSpecial: false, parseSpecial: true })[0]).toBe(ab);
  });

  it("get an SPM space prefix on the text that follows them", () => {
    expect(llama.encode("<s>Hello", { addSpecial: false, parseSpecial: true })).toEqual([1, 15043]);
  });

  it("strip whitespace after them where llama.cpp sets rstrip (Phi-3)", () => {
    const parse = { addSpecial: false, parseSpecial: true };
    expect(phi3.encode("<|user|>\n  Hi<|end|>\n", parse)).toEqual(phi3.encode("<|user|>Hi<|end|>", parse));
    expect(phi3.encode("<|user|>Hi<|end|>", parse)).toEqual([32010, 6324, 32007]);
  });
});

describe("metadata errors", () => {
  const cases: Array<[string, Map<string, GGUFValue>, RegExp]> = [
    ["no model", new Map(), /no tokenizer\.ggml\.model/],
    ["unknown model", spmVocab({ "tokenizer.ggml.model": "mystery" }), /unknown tokenizer model 'mystery'/],
    ["unsupported model", spmVocab({ "tokenizer.ggml.model": "t5" }), /'t5' is not supported/],
    ["unknown pre-tokenizer", bpeVocab({ "tokenizer.ggml.pre": "nonesuch" }), /unknown pre-tokenizer type 'nonesuch'/],
    ["no tokens", new Map<string, GGUFValue>([["tokenizer.ggml.model", "llama"]]), /no tokenizer\.ggml\.tokens/],
    ["no merges", new Map<string, GGUFValue>([["tokenizer.ggml.model", "gpt2"], ["tokenizer.ggml.tokens", ["a"]]]), /no tokenizer\.ggml\.merges/],
    ["duplicate tokens", new Map<string, GGUFValue>([["tokenizer.ggml.model", "llama"], ["tokenizer.ggml.tokens", ["a", "a"]]]), /duplicate token/],
    ["short scores", spmVocab({ "tokenizer.ggml.scores": new Float32Array(3) }), /tokenizer\.ggml\.scores has 3 entries/],
    ["wrong type", spmVocab({ "tokenizer.ggml.tokens": new Int32Array(3) }), /tokenizer\.ggml\.tokens must be an array of strings/],
  ];
  it.each(cases)("%s", (_name, metadata, message) => {
    expect(() => Tokenizer.fromMetadata(metadata)).toThrow(TokenizerError);
    expect(() => Tokenizer.fromMetadata(metadata)).toThrow(message);
  });
});

describe("decoding", () => {
  it("renders or skips special tokens", () => {
    const ids = llama.encode("Hello world");
    expect(llama.decode(ids)).toBe("<s> Hello world");
    // llama.cpp keeps the prefix space when it drops a leading BOS, and drops it otherwise.
    expect(llama.decode(ids, { skipSpecial: true })).toBe(" Hello world");
    expect(llama.decode(ids.slice(1), { skipSpecial: true })).toBe("Hello world");
  });

  it("turns byte tokens and byte-level pieces into bytes", () => {
    expect(llama.tokenToPiece(15043)).toBe(" Hello");
    expect(Array.from(llama.tokenBytes(3 + 0xe2))).toEqual([0xe2]); // <0xE2>
    expect(gpt2.tokenToPiece(gpt2.encode(" world")[0]!)).toBe(" world");
    expect(llama.tokenToPiece(1)).toBe("<s>");
    expect(llama.tokenToPiece(1, { special: false })).toBe("");
  });

  it("cleans the spaces HF decoders add where the vocabulary asks", () => {
    expect(gpt2.decode(gpt2.encode("Hello , world ! It 's ' quoted ' ."))).toBe("Hello, world! It's'quoted '.");
    expect(deepseek.decode(deepseek.encode("Hello , world !"), { skipSpecial: true })).toBe("Hello , world !");
  });

  it("lowercases, strips accents and splits punctuation for BERT", () => {
    expect(bert.decode(bert.encode("Héllo, WORLD!"), { skipSpecial: true })).toBe(" hello, world!");
    expect(bert.encode("😀", { addSpecial: false })).toEqual([100]); // [UNK]
  });

  it("rejects ids outside the vocabulary", () => {
    expect(() => llama.decode([32000])).toThrow(RangeError);
    expect(() => llama.createStreamDecoder().push(-1)).toThrow(RangeError);
  });
});
