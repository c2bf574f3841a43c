/**
 * Codepoint properties the way llama.cpp's unicode tables define them: one general-category
 * bit per codepoint (unassigned codepoints are UNDEFINED, not CONTROL) plus White_Space.
 * The tables come from the JS engine's Unicode data, computed lazily per codepoint.
 */

export const Cpt = {
  UNDEFINED: 0x0001,
  NUMBER: 0x0002, // \p{N}
  LETTER: 0x0004, // \p{L}
  SEPARATOR: 0x0008, // \p{Z}
  ACCENT_MARK: 0x0010, // \p{M}
  PUNCTUATION: 0x0020, // \p{P}
  SYMBOL: 0x0040, // \p{S}
  CONTROL: 0x0080, // \p{C} minus unassigned
  CATEGORIES: 0x00ff,
  WHITESPACE: 0x0100, // \p{White_Space}
} as const;

const MAX_CODEPOINT = 0x10ffff;
const CATEGORY_OF_GROUP = [Cpt.LETTER, Cpt.NUMBER, Cpt.SEPARATOR, Cpt.ACCENT_MARK, Cpt.PUNCTUATION, Cpt.SYMBOL, Cpt.CONTROL];
const CLASSIFY = /^(?:(\p{L})|(\p{N})|(\p{Z})|(\p{M})|(\p{P})|(\p{S})|([\p{Cc}\p{Cf}\p{Cs}\p{Co}]))$/u;
const WHITE_SPACE = /^\p{White_Space}$/u;

// 0 means "not computed yet": every computed entry has exactly one category bit.
const flagTable = new Uint16Array(MAX_CODEPOINT + 1);

function classify(cp: number): number {
  const ch = String.fromCodePoint(cp);
  const m = CLASSIFY.exec(ch);
  let flags: number = Cpt.UNDEFINED;
  if (m) {
    for (let g = 1; g <= CATEGORY_OF_GROUP.length; g++) {
      if (m[g] !== undefined) {
        flags = CATEGORY_OF_GROUP[g - 1]!;
        break;
      }
    }
  }
  if (WHITE_SPACE.test(ch)) flags |= Cpt.WHITESPACE;
  return flags;
}

/** Category and whitespace flags of a codepoint; 0 for values outside Unicode (llama.cpp's "out of range"). */
export function cptFlags(cp: number): number {
  if (cp < 0 || cp > MAX_CODEPOINT) return 0;
  let f = flagTable[cp]!;
  if (f === 0) {
    f = classify(cp);
    flagTable[cp] = f;
  }
  return f;
}

const lowerCache = new Map<number, number>();

/** Simple lowercase as llama.cpp tabulates it: the first codepoint of the full lowercase mapping. */
export function toLowerCpt(cp: number): number {
  if (cp < 0x80) return cp >= 0x41 && cp <= 0x5a ? cp + 0x20 : cp;
  if (cp > MAX_CODEPOINT) return cp;
  let lower = lowerCache.get(cp);
  if (lower === undefined) {
    lower = String.fromCodePoint(cp).toLowerCase().codePointAt(0)!;
    lowerCache.set(cp, lower);
  }
  return lower;
}

const nfdCache = new Map<number, number>();

/** llama.cpp's per-codepoint NFD: the first codepoint of the canonical decomposition. */
export function nfdFirstCpt(cp: number): number {
  if (cp < 0xc0) return cp;
  let base = nfdCache.get(cp);
  if (base === undefined) {
    base = String.fromCodePoint(cp).normalize("NFD").codePointAt(0)!;
    nfdCache.set(cp, base);
  }
  return base;
}

/** CJK ideograph blocks (llama.cpp's unicode_cpt_is_han, used by the Kimi-K2 splitter). */
export function isHan(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0x2ceb0 && cp <= 0x2ebef) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** The codepoints of a well-formed string. */
export function codepointsOf(text: string): Uint32Array {
  const out = new Uint32Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const cp = text.codePointAt(i)!;
    out[n++] = cp;
    if (cp > 0xffff) i++;
  }
  return out.subarray(0, n);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Replaces lone surrogates by U+FFFD, which is what the text's UTF-8 encoding holds. */
export function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, "\uFFFD");
}

const encoder = new TextEncoder();

export function utf8Bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Length in bytes of a well-formed string's UTF-8 encoding. */
export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** ASCII whitespace as C's isspace() sees it in the "C" locale. */
export function isAsciiSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}
