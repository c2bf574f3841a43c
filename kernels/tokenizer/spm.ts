/**
 * SentencePiece BPE as llama.cpp runs it (llm_tokenizer_spm): start from single codepoints and
 * repeatedly merge the adjacent pair whose concatenation is the highest-scoring token (leftmost
 * on ties); what is left unmerged and is not a token falls back to byte tokens <0xNN>.
 */
import { SymbolList } from "./symbols.ts";
import { byteTokenText, type Vocab } from "./vocab.ts";

export class SpmTokenizer {
  /** Token of each byte for the fallback: <0xNN>, else the byte itself as text, else <unk>. */
  private readonly byteTokens: Array<number | undefined>;

  constructor(private readonly vocab: Vocab) {
    this.byteTokens = Array.from({ length: 256 }, (_, b) => {
      const id = vocab.tokenToId.get(byteTokenText(b)) ?? (b < 0x80 ? vocab.tokenToId.get(String.fromCharCode(b)) : undefined);
      // llama.cpp aborts when a byte has no token; an <unk> keeps encoding total.
      return id ?? vocab.special.unk;
    });
  }

  /** Tokenizes text whose spaces are already ▁ (and that carries the leading ▁ if wanted). */
  tokenize(text: string, out: number[]): void {
    const { tokenToId, scores } = this.vocab;
    const symbols = new SymbolList(text);
    // Highest score first.
    symbols.mergeBest((left, right) => {
      const id = tokenToId.get(symbols.joinedText(left, right));
      return id === undefined ? undefined : -scores[id]!;
    });
    // Merged symbols are tokens; an unmerged codepoint that is not one is spelled out in bytes.
    symbols.emit(tokenToId, this.byteTokens, out);
  }
}
