/**
 * Byte-level BPE as llama.cpp runs it (llm_tokenizer_bpe): pre-tokenize into words, then in
 * each word repeatedly merge the adjacent pair with the lowest merge rank (leftmost on ties).
 */
import { PreTokenizer } from "./pretokenize.ts";
import { SymbolList } from "./symbols.ts";
import { Cpt, codepointsOf, cptFlags, toLowerCpt } from "./unicode.ts";
import { byteTokenText, type Vocab } from "./vocab.ts";

const ALL_NEWLINES = /^\n+$/;

export class BpeTokenizer {
  private readonly pre: PreTokenizer;
  /** Per byte, the token that spells it when a symbol is not a token (undefined: dropped). */
  private readonly byteTokens: Array<number | undefined>;

  constructor(private readonly vocab: Vocab) {
    const spec = vocab.pre!;
    this.pre = new PreTokenizer(spec.regexes, spec.byteEncode);
    this.byteTokens = Array.from({ length: 256 }, (_, b) =>
      spec.byteEncode
        ? // One raw byte as text: only ASCII bytes can be a (valid UTF-8) token.
          b < 0x80 ? vocab.tokenToId.get(String.fromCharCode(b)) : undefined
        : vocab.tokenToId.get(byteTokenText(b)),
    );
  }

  /** Tokenizes one text fragment (spaces already ▁ when the vocabulary escapes them). */
  tokenize(text: string, out: number[]): void {
    if (this.vocab.model === "whitespace") this.tokenizeWhitespaceSeparated(text, out);
    else this.tokenizeWords(text, out);
  }

  private tokenizeWords(text: string, out: number[]): void {
    for (const word of this.pre.split(text)) this.tokenizeWord(word, out);
  }

  /** The "whitespace" model: BPE on each whitespace-separated run, lowercased if the normalizer says so. */
  private tokenizeWhitespaceSeparated(text: string, out: number[]): void {
    let segment = "";
    for (const cp of codepointsOf(text)) {
      if (cptFlags(cp) & Cpt.WHITESPACE) {
        if (segment) this.tokenizeWords(segment, out);
        segment = "";
      } else segment += String.fromCodePoint(this.vocab.lowercase ? toLowerCpt(cp) : cp);
    }
    if (segment) this.tokenizeWords(segment, out);
  }

  private tokenizeWord(word: string, out: number[]): void {
    const { tokenToId, bpeRanks, ignoreMerges, pre } = this.vocab;
    const whole = tokenToId.get(word);
    if (whole !== undefined && (ignoreMerges || (pre!.gemma4 && ALL_NEWLINES.test(word)))) {
      out.push(whole);
      return;
    }

    const symbols = new SymbolList(word);
    // Lowest merge rank first.
    symbols.mergeBest((left, right) => bpeRanks.get(`${symbols.text(left)} ${symbols.text(right)}`));
    symbols.emit(tokenToId, this.byteTokens, out);
  }
}
