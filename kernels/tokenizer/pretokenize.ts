/**
 * Pre-tokenization (llama.cpp's unicode_regex_split): the text is cut into words by a list of
 * regexes, each refining the pieces of the one before; words are then mapped to GPT-2's
 * byte-level alphabet when the vocabulary is byte-level.
 */
import { byteEncodeCodepoint } from "./byte-level.ts";
import { splitAfmoeDigits, splitGpt2, splitKimiK2, splitLlama3, type Splitter } from "./custom-split.ts";
import { splitBeforeDigitTriples, splitDigitGroupsFromEnd } from "./lookahead-split.ts";
import {
  AFMOE_DIGITS_REGEX,
  DIGIT_GROUPS_FROM_END_REGEX,
  DIGIT_TRIPLES_AHEAD_REGEX,
  GPT2_REGEX,
  KIMI_K2_REGEX,
  LLAMA3_REGEX,
} from "./pre-types.ts";
import { collapsedView, compileRegex, splitWithRegex, wideView, type CompiledRegex, type RegexView } from "./regex-split.ts";
import { codepointsOf } from "./unicode.ts";

/** Regexes run by hand-written splitters: llama.cpp's own, and two linear equivalents of lookahead regexes. */
const HAND_WRITTEN: ReadonlyMap<string, Splitter> = new Map([
  [GPT2_REGEX, splitGpt2],
  [LLAMA3_REGEX, splitLlama3],
  [KIMI_K2_REGEX, splitKimiK2],
  [AFMOE_DIGITS_REGEX, splitAfmoeDigits],
  [DIGIT_TRIPLES_AHEAD_REGEX, splitBeforeDigitTriples],
  [DIGIT_GROUPS_FROM_END_REGEX, splitDigitGroupsFromEnd],
]);

type Step = { splitter: Splitter } | { compiled: CompiledRegex };

export class PreTokenizer {
  private readonly steps: Step[];

  constructor(
    regexes: readonly string[],
    private readonly byteEncode: boolean,
  ) {
    this.steps = regexes.map((expr) => {
      const splitter = HAND_WRITTEN.get(expr);
      return splitter ? { splitter } : { compiled: compileRegex(expr) };
    });
  }

  /** The words of a well-formed text, byte-level encoded if the vocabulary is. */
  split(text: string): string[] {
    const cpts = codepointsOf(text);
    let offsets: number[] = [cpts.length];
    let collapsed: RegexView | undefined;
    let wide: RegexView | undefined;
    for (const step of this.steps) {
      if ("splitter" in step) {
        offsets = step.splitter(cpts, offsets);
        continue;
      }
      const view = step.compiled.collapsed ? (collapsed ??= collapsedView(cpts)) : (wide ??= wideView(cpts));
      offsets = splitWithRegex(step.compiled, view, offsets);
    }
    return this.words(text, cpts, offsets);
  }

  private words(text: string, cpts: Uint32Array, offsets: readonly number[]): string[] {
    const words: string[] = new Array(offsets.length);
    let cp = 0;
    let utf16 = 0;
    const parts: string[] = [];
    for (let w = 0; w < offsets.length; w++) {
      const end = cp + offsets[w]!;
      const wordStart = utf16;
      for (; cp < end; cp++) {
        const c = cpts[cp]!;
        if (this.byteEncode) byteEncodeCodepoint(c, parts);
        utf16 += c > 0xffff ? 2 : 1;
      }
      if (this.byteEncode) {
        words[w] = parts.join("");
        parts.length = 0;
      } else words[w] = text.slice(wordStart, utf16);
    }
    return words;
  }
}
