/**
 * Properties of encode/decode on random text, for all seven vocabularies.
 *
 * What round-trips, exactly (decode with skipSpecial, encode without BOS unless stated):
 * - byte-level BPE: the pieces' bytes are the text's UTF-8 (lone surrogates are U+FFFD, as in
 *   the text's UTF-8 encoding) when the vocabulary has a token for each of those bytes. decode() also undoes the spaces HF decoders add before
 *   ?!., and around ' when the vocabulary asks for it (gpt-2, mpt, starcoder), so decode()
 *   equals the text when no space precedes one of ?!.,' there, and always for deepseek-coder.
 * - SPM (byte fallback): the text, with ▁ read back as a space (SPM's own space mark).
 *   Text around a user-defined token (Phi-3's "</s>") gets SPM's space prefix, so it is left out.
 * - WPM: BERT's normalization: lowercase, accents stripped, words joined by one space after a
 *   leading space (for text of letters, digits and spaces).
 */
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { byteChar } from "../kernels/tokenizer/byte-level.ts";
import { Tokenizer } from "../kernels/tokenizer/index.ts";

const VOCABS = ["bert-bge", "deepseek-coder", "gpt-2", "llama-spm", "mpt", "phi-3", "starcoder"] as const;
type VocabName = (typeof VOCABS)[number];
const metadata = new Map(
  VOCABS.map((name) => [name, parseGGUF(new Uint8Array(readFileSync(new URL(`./fixtures/vocab/ggml-vocab-${name}.gguf`, import.meta.url)))).metadata]),
);
const tokenizers = new Map(VOCABS.map((name) => [name, Tokenizer.fromMetadata(metadata.get(name)!)]));
const get = (name: VocabName) => tokenizers.get(name)!;

/**
 * Whether a byte-level vocabulary has a token for every byte of the text's UTF-8. Not all do:
 * starcoder has no token for byte F1, the lead byte of U+40000–U+7FFFF.
 */
function representable(name: VocabName): (text: string) => boolean {
  if (metadata.get(name)!.get("tokenizer.ggml.model") !== "gpt2") return () => true; // byte fallback or [UNK]
  const tokens = new Set(metadata.get(name)!.get("tokenizer.ggml.tokens") as string[]);
  const missing = new Set(Array.from({ length: 256 }, (_, b) => b).filter((b) => !tokens.has(byteChar(b))));
  return (text) => !new TextEncoder().encode(text).some((b) => missing.has(b));
}

const RUNS = { numRuns: 150 };
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)); // lone surrogates too
const tricky = fc.constantFrom(" ", "  ", "   ", "\n", "\r\n", "\t", "\0", "'s", " ?", " '", "▁", "Ġ", "é", "e\u0301", "你好", "😀", "👍🏽", "\u00a0", "\u3000", "<s>", "</s>", "<|endoftext|>", "õ", "123456");
/** Arbitrary text: any code points, lone surrogates, NUL, and pieces that exercise special cases. */
const anyText = fc.string({ unit: fc.oneof(fc.string({ unit: "binary", maxLength: 3 }), codeUnit, tricky), maxLength: 40 });
/** Well-formed text without U+FFFD. */
const validText = fc.string({ unit: fc.oneof(fc.string({ unit: "binary", maxLength: 3 }), tricky), maxLength: 40 }).filter((t) => !t.includes("\uFFFD"));
const wellFormed = (t: string) => new TextDecoder().decode(new TextEncoder().encode(t));

function streamed(tokenizer: Tokenizer, ids: number[], skipSpecial: boolean): string[] {
  const stream = tokenizer.createStreamDecoder({ skipSpecial });
  return [...ids.map((id) => stream.push(id)), stream.flush()];
}

describe.each(VOCABS)("%s", (name) => {
  const tokenizer = get(name);

  it("never throws and gives ids inside the vocabulary", () => {
    fc.assert(
      fc.property(anyText, fc.boolean(), fc.boolean(), (text, addSpecial, parseSpecial) => {
        const ids = tokenizer.encode(text, { addSpecial, parseSpecial });
        return ids.every((id) => Number.isInteger(id) && id >= 0 && id < tokenizer.vocabSize);
      }),
      RUNS,
    );
  });

  it("handles long runs in near-linear time", () => {
    for (const run of ["a", " ", "\n", "7", "😀", "é", "\0", "\uD800", "ab ", "'s", "\t\n "]) {
      const started = performance.now();
      const ids = tokenizer.encode(run.repeat(Math.ceil(20_000 / run.length)));
      tokenizer.decode(ids);
      expect(performance.now() - started).toBeLessThan(2_000);
    }
  });

  it("streams exactly the full decode, for any ids", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: tokenizer.vocabSize - 1 }), { maxLength: 30 }), fc.boolean(), (ids, skipSpecial) => {
        return streamed(tokenizer, ids, skipSpecial).join("") === tokenizer.decode(ids, { skipSpecial });
      }),
      RUNS,
    );
  });

  it("streams valid text without ever emitting a broken character", () => {
    const canSpell = representable(name);
    fc.assert(
      fc.property(validText, fc.boolean(), (text, skipSpecial) => {
        fc.pre(canSpell(text));
        const ids = tokenizer.encode(text, { parseSpecial: true });
        const chunks = streamed(tokenizer, ids, skipSpecial);
        return chunks.join("") === tokenizer.decode(ids, { skipSpecial }) && chunks.every((c) => !c.includes("\uFFFD"));
      }),
      RUNS,
    );
  });
});

describe("round trips", () => {
  it.each(["gpt-2", "mpt", "starcoder", "deepseek-coder"] as const)("%s: the pieces' bytes are the text's UTF-8", (name) => {
    const tokenizer = get(name);
    const canSpell = representable(name);
    fc.assert(
      fc.property(anyText, (text) => {
        fc.pre(canSpell(text));
        const bytes = tokenizer.encode(text, { addSpecial: false }).flatMap((id) => Array.from(tokenizer.tokenBytes(id)));
        return new TextDecoder().decode(Uint8Array.from(bytes)) === wellFormed(text);
      }),
      RUNS,
    );
  });

  it.each(["gpt-2", "mpt", "starcoder", "deepseek-coder"] as const)("%s: decode gives the text back", (name) => {
    const tokenizer = get(name);
    const cleans = name !== "deepseek-coder";
    const canSpell = representable(name);
    fc.assert(
      fc.property(anyText, (text) => {
        fc.pre(canSpell(text) && (!cleans || !/ [?!.,']/.test(text)));
        return tokenizer.decode(tokenizer.encode(text), { skipSpecial: true }) === wellFormed(text);
      }),
      RUNS,
    );
  });

  it.each(["llama-spm", "phi-3"] as const)("%s: decode gives the text back, ▁ read as a space", (name) => {
    const tokenizer = get(name);
    fc.assert(
      fc.property(anyText, (text) => {
        fc.pre(!text.includes("</s>"));
        const expected = wellFormed(text).replaceAll("▁", " ");
        return (
          tokenizer.decode(tokenizer.encode(text, { addSpecial: false }), { skipSpecial: true }) === expected &&
          // With a BOS, llama.cpp keeps the space SPM put in front of the text.
          tokenizer.decode(tokenizer.encode(text), { skipSpecial: true }) === (text === "" ? "" : ` ${expected}`)
        );
      }),
      RUNS,
    );
  });

  it("bert-bge: decode gives BERT's normalized words", () => {
    const tokenizer = get("bert-bge");
    const chars = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCXYZ0123456789éÀüñ", " ", "  ");
    const normalize = (w: string) => w.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
    fc.assert(
      fc.property(fc.string({ unit: chars, maxLength: 40 }), (text) => {
        const words = text.split(" ").filter(Boolean).map(normalize);
        return tokenizer.decode(tokenizer.encode(text), { skipSpecial: true }) === words.map((w) => ` ${w}`).join("");
      }),
      RUNS,
    );
  });
});

describe("streaming across split characters", () => {
  it("holds back partial UTF-8 until the character is complete", () => {
    const tokenizer = get("gpt-2");
    const text = "naïve café 😀👍🏽 你好, мир!";
    const ids = tokenizer.encode(text);
    const partial = ids.filter((id) => new TextDecoder().decode(tokenizer.tokenBytes(id)).includes("\uFFFD"));
    expect(partial.length).toBeGreaterThan(0); // some tokens really end mid-character
    const chunks = streamed(tokenizer, ids, true);
    expect(chunks.join("")).toBe(text);
    expect(chunks.some((c) => c.includes("\uFFFD"))).toBe(false);
  });

  it("cleans spaces the same way streamed as whole, whatever the token boundaries", () => {
    const tokenizer = get("gpt-2");
    const pieces = [" ", "  ", "'", " '", "r", "re", "v", "ve", "e", "s", "m", "t", "d", "ll", "?", ".", ",", "!", "a", "é", " 're", "'s"];
    const tokens = fc.constantFrom(...pieces.map((p) => tokenizer.encode(p)));
    fc.assert(
      fc.property(fc.array(tokens, { maxLength: 20 }), (parts) => {
        const ids = parts.flat();
        return streamed(tokenizer, ids, false).join("") === tokenizer.decode(ids);
      }),
      RUNS,
    );
  });

  it("holds back spaces that clean-up may still remove", () => {
    const tokenizer = get("gpt-2");
    const stream = tokenizer.createStreamDecoder();
    const out = tokenizer.encode("Hello ,").map((id) => stream.push(id));
    expect(out.join("") + stream.flush()).toBe("Hello,");
  });
});
