/**
 * llama.cpp's hand-written splitters. For a few pre-tokenizer regexes llama.cpp runs these
 * scanners instead of a regex engine; they are reproduced step by step so that corner cases
 * follow llama.cpp rather than the regex. Each splitter refines a list of segment lengths
 * (in codepoints) into smaller ones.
 */
import { Cpt, cptFlags, isHan, toLowerCpt } from "./unicode.ts";

const OUT_OF_RANGE = 0xffffffff;
const L = Cpt.LETTER;
const N = Cpt.NUMBER;
const WS = Cpt.WHITESPACE;
const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const APOSTROPHE = 0x27;

/** One segment of the codepoints, read the way llama.cpp reads it: outside it is "out of range". */
export class Segment {
  private prevEnd: number;

  constructor(
    private readonly cpts: Uint32Array,
    readonly start: number,
    readonly end: number,
    private readonly out: number[],
  ) {
    this.prevEnd = start;
  }

  cpt(pos: number): number {
    return pos >= this.start && pos < this.end ? this.cpts[pos]! : OUT_OF_RANGE;
  }

  flags(pos: number): number {
    return pos >= this.start && pos < this.end ? cptFlags(this.cpts[pos]!) : 0;
  }

  /** Closes the piece that ends at `end`; returns its length. */
  emit(end: number): number {
    const len = end - this.prevEnd;
    if (len > 0) this.out.push(len);
    this.prevEnd = end;
    return len;
  }

  /** An empty regex match at pos: the text before it is a piece, then an empty piece. */
  emitEmptyAt(pos: number): void {
    this.emit(pos);
    this.out.push(0);
  }

  /** Emits whatever is left after the last emitted piece. */
  emitRest(): void {
    if (this.prevEnd < this.end) this.emit(this.end);
  }
}

export type Splitter = (cpts: Uint32Array, offsets: readonly number[]) => number[];

export function bySegment(scan: (seg: Segment) => void): Splitter {
  return (cpts, offsets) => {
    const out: number[] = [];
    let start = 0;
    for (const len of offsets) {
      scan(new Segment(cpts, start, start + len, out));
      start += len;
    }
    return out;
  };
}

const isNewline = (c: number): boolean => c === CR || c === LF;

/** Length of `'s|'t|'re|'ve|'m|'ll|'d` at pos (0 if none); `fold` makes it case-insensitive. */
function contractionLength(seg: Segment, pos: number, fold: boolean): number {
  if (seg.cpt(pos) !== APOSTROPHE || pos + 1 >= seg.end) return 0;
  const lower = fold ? toLowerCpt : (c: number) => c;
  const a = lower(seg.cpt(pos + 1));
  if (a === 0x73 || a === 0x74 || a === 0x6d || a === 0x64) return 2; // s t m d
  if (pos + 2 < seg.end) {
    const b = lower(seg.cpt(pos + 2));
    if ((a === 0x72 && b === 0x65) || (a === 0x76 && b === 0x65) || (a === 0x6c && b === 0x6c)) return 3; // re ve ll
  }
  return 0;
}

/** `\p{N}{1,3}` repeated: emits groups of three digits from pos; returns the end. */
function emitDigitGroups(seg: Segment, pos: number): number {
  let groupStart = pos;
  while (seg.flags(pos) & N) {
    if (++pos - groupStart >= 3) {
      seg.emit(pos);
      groupStart = pos;
    }
  }
  seg.emit(pos);
  return pos;
}

/** ` ?[^\s\p{L}\p{N}]+`: `next` holds the flags after the optional space; returns the end. */
function skipSymbolRun(seg: Segment, pos: number, next: number): number {
  if (seg.cpt(pos) === SPACE) pos++;
  while (!(next & (WS | L | N)) && next) next = seg.flags(++pos);
  return pos;
}

function skipNewlines(seg: Segment, pos: number): number {
  while (isNewline(seg.cpt(pos))) pos++;
  return pos;
}

/**
 * The whitespace alternatives: `\s*[\r\n]+` (only with `newlines`), `\s+(?!\S)`, `\s+`,
 * else a single unmatched codepoint. Returns the end of the piece that starts at pos.
 */
function whitespaceEnd(seg: Segment, pos: number, newlines: boolean): number {
  let count = 0;
  let afterLastNewline = 0;
  while (seg.flags(pos + count) & WS) {
    if (newlines && isNewline(seg.cpt(pos + count))) afterLastNewline = pos + count + 1;
    count++;
  }
  if (afterLastNewline > 0) return afterLastNewline;
  if (count > 1 && seg.cpt(pos + count) !== OUT_OF_RANGE) return pos + count - 1;
  if (count > 0) return pos + count;
  return pos + 1;
}

/** ` ?\p{L}+` or ` ?\p{N}+`: returns the end of the run of `category` after an optional space. */
function skipCategoryRun(seg: Segment, pos: number, category: number): number {
  if (seg.cpt(pos) === SPACE) pos++;
  while (seg.flags(pos) & category) pos++;
  return pos;
}

/** `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` */
export const splitGpt2: Splitter = bySegment((seg) => {
  for (let pos = seg.start; pos < seg.end; ) {
    const contraction = contractionLength(seg, pos, false);
    if (contraction > 0) {
      pos += seg.emit(pos + contraction);
      continue;
    }
    const next = seg.cpt(pos) === SPACE ? seg.flags(pos + 1) : seg.flags(pos);
    if (next & (L | N)) pos = skipCategoryRun(seg, pos, next & L ? L : N);
    else if (!(next & WS) && next) pos = skipSymbolRun(seg, pos, next);
    else pos = whitespaceEnd(seg, pos, false);
    seg.emit(pos);
  }
});

/**
 * `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
 */
export const splitLlama3: Splitter = bySegment((seg) => {
  for (let pos = seg.start; pos < seg.end; ) {
    const cpt = seg.cpt(pos);
    const flags = seg.flags(pos);
    const contraction = contractionLength(seg, pos, true);
    if (contraction > 0) {
      pos += seg.emit(pos + contraction);
      continue;
    }
    if (!isNewline(cpt) && !(flags & N) && ((flags & L) || (seg.flags(pos + 1) & L))) {
      pos++;
      while (seg.flags(pos) & L) pos++;
      seg.emit(pos);
      continue;
    }
    if (flags & N) {
      pos = emitDigitGroups(seg, pos);
      continue;
    }
    const next = cpt === SPACE ? seg.flags(pos + 1) : flags;
    // llama.cpp tests the current codepoint's flags here, not `next`: a lone trailing space matches.
    if (!(next & (WS | L | N)) && flags) pos = skipNewlines(seg, skipSymbolRun(seg, pos, next));
    else pos = whitespaceEnd(seg, pos, true);
    seg.emit(pos);
  }
});

/** A letter that is not a Han ideograph (Kimi-K2 keeps Han runs apart). */
function isNonHanLetter(seg: Segment, pos: number): boolean {
  return (seg.flags(pos) & L) !== 0 && !isHan(seg.cpt(pos));
}

/**
 * Kimi-K2: `[\p{Han}]+`, then letter runs without Han (optionally led by one non-letter,
 * non-number, non-newline and followed by a contraction), then as llama3.
 */
export const splitKimiK2: Splitter = bySegment((seg) => {
  for (let pos = seg.start; pos < seg.end; ) {
    const cpt = seg.cpt(pos);
    const flags = seg.flags(pos);
    if (isHan(cpt)) {
      while (isHan(seg.cpt(pos))) pos++;
      seg.emit(pos);
      continue;
    }
    const canLead = !(isNewline(cpt) || flags & (L | N));
    if (isNonHanLetter(seg, pos) || (canLead && isNonHanLetter(seg, pos + 1))) {
      if (canLead) pos++;
      while (isNonHanLetter(seg, pos)) pos++;
      pos += contractionLength(seg, pos, true);
      seg.emit(pos);
      continue;
    }
    if (flags & N) {
      pos = emitDigitGroups(seg, pos);
      continue;
    }
    const next = cpt === SPACE ? seg.flags(pos + 1) : flags;
    if (!(next & (WS | L | N)) && next) pos = skipNewlines(seg, skipSymbolRun(seg, pos, next));
    else pos = whitespaceEnd(seg, pos, true);
    seg.emit(pos);
  }
});

/** AFMoE digits: each run of digits is cut so that its first group has (length mod 3) digits. */
export const splitAfmoeDigits: Splitter = bySegment((seg) => {
  for (let pos = seg.start; pos < seg.end; ) {
    if (!(seg.flags(pos) & N)) {
      pos++;
      continue;
    }
    const digitsStart = pos;
    while (seg.flags(pos) & N) pos++;
    const first = (pos - digitsStart) % 3;
    // Text before the digits is not cut off: it joins the first group, as in llama.cpp.
    if (first > 0) seg.emit(digitsStart + first);
    for (let cut = digitsStart + first; cut < pos; ) {
      cut += 3;
      seg.emit(cut);
    }
  }
  seg.emitRest();
});
