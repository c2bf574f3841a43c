/**
 * The general path of llama.cpp's unicode_regex_split: a pre-tokenizer regex runs with
 * ECMAScript semantics (C++ std::regex there, JS RegExp here) over one of two views of the text.
 *
 * - "collapsed": when the regex uses \p{N}, \p{L}, \p{P}, \p{M}, \p{S} (or \p{Lu} …, all read
 *   as \p{L}), every non-ASCII codepoint becomes one stand-in character for its category
 *   (whitespace becomes \v) and each \p{…} becomes a class of that stand-in plus the ASCII
 *   members of the category. This is why, for example, non-ASCII lowercase letters count as
 *   "not [a-z]" letters in the GPT-4o regex.
 * - "wide": otherwise the regex runs over the codepoints themselves, non-ASCII whitespace
 *   replaced by \v.
 * In both, \s is ASCII whitespace, as C's isspace() in the "C" locale.
 */
import { Cpt, cptFlags } from "./unicode.ts";

const CATEGORY_OF_PROPERTY: Readonly<Record<string, number>> = {
  "\\p{N}": Cpt.NUMBER,
  "\\p{L}": Cpt.LETTER,
  "\\p{P}": Cpt.PUNCTUATION,
  "\\p{M}": Cpt.ACCENT_MARK,
  "\\p{S}": Cpt.SYMBOL,
  "\\p{Lu}": Cpt.LETTER,
  "\\p{Ll}": Cpt.LETTER,
  "\\p{Lt}": Cpt.LETTER,
  "\\p{Lm}": Cpt.LETTER,
  "\\p{Lo}": Cpt.LETTER,
};

/** The stand-in character of each category in the collapsed text. */
const STAND_IN: ReadonlyMap<number, number> = new Map([
  [Cpt.NUMBER, 0xd1],
  [Cpt.LETTER, 0xd2],
  [Cpt.PUNCTUATION, 0xd3],
  [Cpt.ACCENT_MARK, 0xd4],
  [Cpt.SYMBOL, 0xd5],
]);
const OTHER_STAND_IN = 0xd0;
const WHITESPACE_STAND_IN = 0x0b;

/** The ASCII members of each category, as class contents. */
const ASCII_MEMBERS: ReadonlyMap<number, string> = new Map([
  [Cpt.NUMBER, "0-9"],
  [Cpt.LETTER, "A-Za-z"],
  [Cpt.PUNCTUATION, "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"],
  [Cpt.ACCENT_MARK, ""],
  [Cpt.SYMBOL, "\\$\\+<->^`\\|"],
]);

function usesCategories(expr: string): boolean {
  return Object.keys(CATEGORY_OF_PROPERTY).some((p) => expr.includes(p));
}

/** Rewrites \p{…} to stand-in classes, scanning brackets exactly as llama.cpp does. */
function collapseRegex(expr: string): string {
  for (const ch of expr) {
    if (ch.codePointAt(0)! >= 0x80) {
      throw new Error(`pre-tokenizer regex mixes unicode categories and non-ASCII characters: ${expr}`);
    }
  }
  let out = "";
  let inside = false;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (c === "[" && (i === 0 || expr[i - 1] !== "\\")) {
      out += "[";
      inside = true;
      continue;
    }
    if (inside && c === "]" && expr[i - 1] !== "\\") {
      out += "]";
      inside = false;
      continue;
    }
    if (c === "\\" && i + 3 < expr.length && expr[i + 1] === "p" && expr[i + 2] === "{") {
      const close = expr.indexOf("}", i + 3);
      const category = close >= 0 && close <= i + 10 ? CATEGORY_OF_PROPERTY[expr.slice(i, close + 1)] : undefined;
      if (category !== undefined) {
        const members = `\\x${STAND_IN.get(category)!.toString(16).toUpperCase()}${ASCII_MEMBERS.get(category)!}`;
        out += inside ? members : `[${members}]`;
        i = close;
        continue;
      }
    }
    out += c;
  }
  return out;
}

const ASCII_SPACE_CLASS = "\\t\\n\\v\\f\\r ";

/** Makes \s and \S mean ASCII whitespace, as in C++ std::regex under the "C" locale. */
function asciiWhitespaceEscapes(source: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === "\\") {
      const e = source[i + 1];
      i++;
      if (e === "s") out += inClass ? ASCII_SPACE_CLASS : `[${ASCII_SPACE_CLASS}]`;
      else if (e === "S" && !inClass) out += `[^${ASCII_SPACE_CLASS}]`;
      else if (e === "S") throw new Error(`\\S inside a character class is not supported: ${source}`);
      else out += c + (e ?? "");
      continue;
    }
    if (c === "[" && !inClass) inClass = true;
    else if (c === "]" && inClass) inClass = false;
    out += c;
  }
  return out;
}

/** A pre-tokenizer regex ready to run on the view of the text it expects. */
export interface CompiledRegex {
  readonly collapsed: boolean;
  readonly regex: RegExp;
}

export function compileRegex(expr: string): CompiledRegex {
  const collapsed = usesCategories(expr);
  const source = asciiWhitespaceEscapes(collapsed ? collapseRegex(expr) : expr);
  return { collapsed, regex: new RegExp(source, collapsed ? "g" : "gu") };
}

/** The text as a regex sees it, with a mapping between UTF-16 positions and codepoint indices. */
export interface RegexView {
  readonly text: string;
  /** UTF-16 position of codepoint i (i may equal the codepoint count). */
  utf16At(cp: number): number;
  /** Codepoint index at a UTF-16 position that starts a codepoint. */
  codepointAt(utf16: number): number;
}

function stringFromCodes(codes: ArrayLike<number>, fromCodePoint: boolean): string {
  const CHUNK = 8192;
  let s = "";
  for (let i = 0; i < codes.length; i += CHUNK) {
    const part = Array.prototype.slice.call(codes, i, i + CHUNK) as number[];
    s += fromCodePoint ? String.fromCodePoint(...part) : String.fromCharCode(...part);
  }
  return s;
}

/** One UTF-16 unit per codepoint: ASCII kept, the rest replaced by category stand-ins. */
export function collapsedView(cpts: Uint32Array): RegexView {
  const codes = new Uint16Array(cpts.length);
  for (let i = 0; i < cpts.length; i++) {
    const cp = cpts[i]!;
    if (cp < 0x80) codes[i] = cp;
    else {
      const flags = cptFlags(cp);
      codes[i] = flags & Cpt.WHITESPACE ? WHITESPACE_STAND_IN : (STAND_IN.get(flags & Cpt.CATEGORIES) ?? OTHER_STAND_IN);
    }
  }
  return { text: stringFromCodes(codes, false), utf16At: (cp) => cp, codepointAt: (u) => u };
}

/** The codepoints themselves, non-ASCII whitespace replaced by \v. */
export function wideView(cpts: Uint32Array): RegexView {
  const codes = new Uint32Array(cpts.length);
  const utf16Start = new Uint32Array(cpts.length + 1);
  let units = 0;
  for (let i = 0; i < cpts.length; i++) {
    const cp = cpts[i]!;
    codes[i] = cp >= 0x80 && cptFlags(cp) & Cpt.WHITESPACE ? WHITESPACE_STAND_IN : cp;
    utf16Start[i] = units;
    units += cp > 0xffff ? 2 : 1;
  }
  utf16Start[cpts.length] = units;
  const cpIndex = new Uint32Array(units + 1);
  for (let i = 0; i <= cpts.length; i++) cpIndex[utf16Start[i]!] = i;
  return { text: stringFromCodes(codes, true), utf16At: (cp) => utf16Start[cp]!, codepointAt: (u) => cpIndex[u]! };
}

/**
 * Splits every segment at the regex's matches, as std::regex_iterator does: each match is a
 * piece, and so is each unmatched gap. Empty matches give empty pieces.
 */
export function splitWithRegex(compiled: CompiledRegex, view: RegexView, offsets: readonly number[]): number[] {
  const out: number[] = [];
  const { regex } = compiled;
  let start = 0;
  for (const len of offsets) {
    const end = start + len;
    const segStart = view.utf16At(start);
    const segment = view.text.slice(segStart, view.utf16At(end));
    let done = start; // codepoint index where the last piece ended
    regex.lastIndex = 0;
    for (let m = regex.exec(segment); m !== null; m = regex.exec(segment)) {
      const matchStart = view.codepointAt(segStart + m.index);
      const matchEnd = view.codepointAt(segStart + m.index + m[0].length);
      if (matchStart > done) out.push(matchStart - done);
      out.push(matchEnd - matchStart);
      done = matchEnd;
      if (m[0].length === 0) regex.lastIndex = m.index + ((segment.codePointAt(m.index) ?? 0) > 0xffff ? 2 : 1);
    }
    if (done < end) out.push(end - done);
    start = end;
  }
  return out;
}
