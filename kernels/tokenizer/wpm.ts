/**
 * BERT WordPiece as llama.cpp runs it (llm_tokenizer_wpm). The GGUF vocabulary stores word
 * starts with a leading ▁ and continuations bare (the converter rewrote "##x" to "x"), so each
 * word is looked up as "▁word", greedily longest-first; a word with an unmatched rest becomes
 * a single [UNK].
 */
import { Cpt, codepointsOf, cptFlags, nfdFirstCpt, toLowerCpt } from "./unicode.ts";
import type { Vocab } from "./vocab.ts";

const WORD_START = "\u2581";

/** The CJK ranges BERT splits into single characters (0x2B920 is HF's value, kept by llama.cpp). */
function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

export class WpmTokenizer {
  constructor(private readonly vocab: Vocab) {}

  /**
   * BERT's normalizer and basic tokenizer: optional per-codepoint NFD with accents dropped,
   * optional lowercase, controls dropped, words split at whitespace, punctuation, ASCII symbols
   * and CJK characters (each of those its own word).
   */
  words(text: string): string[] {
    const { lowercase, stripAccents } = this.vocab;
    const words: string[] = [];
    let word = "";
    const finishWord = () => {
      if (word) words.push(word);
      word = "";
    };
    for (const original of codepointsOf(text)) {
      const cp = stripAccents ? nfdFirstCpt(original) : original;
      const flags = cptFlags(cp);
      if (flags & Cpt.WHITESPACE) {
        finishWord();
        continue;
      }
      if (cp === 0 || cp === 0xfffd || flags & Cpt.CONTROL) continue;
      if (stripAccents && flags & Cpt.ACCENT_MARK) continue;
      const ch = String.fromCodePoint(lowercase ? toLowerCpt(cp) : cp);
      if (flags & Cpt.PUNCTUATION || (cp < 0x7f && flags & Cpt.SYMBOL) || isChineseChar(cp)) {
        finishWord();
        words.push(ch);
      } else word += ch;
    }
    finishWord();
    return words;
  }

  tokenize(text: string, out: number[]): void {
    const { tokenToId, maxTokenLength, special } = this.vocab;
    for (const word of this.words(text)) {
      const marked = WORD_START + word;
      const n = marked.length;
      const wordStart = out.length;
      for (let i = 0; i < n; ) {
        let matchEnd = 0;
        for (let j = Math.min(n, i + maxTokenLength); j > i; j--) {
          const id = tokenToId.get(marked.slice(i, j));
          if (id !== undefined) {
            out.push(id);
            matchEnd = j;
            break;
          }
        }
        if (matchEnd === 0) {
          out.length = wordStart;
          break;
        }
        i = matchEnd;
      }
      if (out.length === wordStart && special.unk !== undefined) out.push(special.unk);
    }
  }
}
