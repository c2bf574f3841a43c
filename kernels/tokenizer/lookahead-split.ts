/**
 * Linear equivalents of two pre-tokenizer regexes whose lookaheads make a backtracking engine
 * (llama.cpp's std::regex, or JS RegExp) quadratic on long digit runs. They give exactly the
 * pieces the regex gives (tests compare them with the regex engine).
 */
import { bySegment, type Segment, type Splitter } from "./custom-split.ts";

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39; // \d
const isWordChar = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f; // \w

/** Calls `run(start, end)` for each maximal run of ASCII digits in the segment. */
function forEachDigitRun(seg: Segment, run: (start: number, end: number) => void): void {
  for (let pos = seg.start; pos < seg.end; pos++) {
    if (!isDigit(seg.cpt(pos))) continue;
    const start = pos;
    while (isDigit(seg.cpt(pos))) pos++;
    run(start, pos);
  }
}

/** `(?=(\d{3})+(?!\d))` (superbpe): an empty match wherever a multiple of three digits remains. */
export const splitBeforeDigitTriples: Splitter = bySegment((seg) => {
  forEachDigitRun(seg, (start, end) => {
    for (let pos = start + ((end - start) % 3); pos < end; pos += 3) seg.emitEmptyAt(pos);
  });
  seg.emitRest();
});

/**
 * `\d{1,3}(?=(?:\d{3})*\b)` (tiny_aya): a digit run that ends at a word boundary is cut into
 * groups of three from its end; a run followed by a letter or `_` does not match at all.
 */
export const splitDigitGroupsFromEnd: Splitter = bySegment((seg) => {
  forEachDigitRun(seg, (start, end) => {
    if (isWordChar(seg.cpt(end))) return;
    seg.emit(start);
    for (let cut = start + ((end - start - 1) % 3) + 1; cut <= end; cut += 3) seg.emit(cut);
  });
  seg.emitRest();
});
