/**
 * Cutting special tokens out of the text before tokenizing (llama.cpp's tokenizer_st_partition).
 * Tokens are tried longest first, each one over every text fragment left by the ones before.
 * User-defined tokens are always cut out; control and unknown tokens only when parsing specials.
 */
import { Attr } from "./attrs.ts";
import { isAsciiSpace } from "./unicode.ts";
import type { Vocab } from "./vocab.ts";

export type Fragment = { text: string } | { token: number };

type Span = { start: number; end: number } | { token: number };

export function partitionSpecial(text: string, vocab: Vocab, parseSpecial: boolean): Fragment[] {
  let spans: Span[] = text.length > 0 ? [{ start: 0, end: text.length }] : [];
  for (const id of vocab.specialTokens) {
    const attr = vocab.attrs[id]!;
    if (!parseSpecial && attr & (Attr.CONTROL | Attr.UNKNOWN)) continue;
    const needle = vocab.tokens[id]!;
    if (!text.includes(needle)) continue;
    const next: Span[] = [];
    for (const span of spans) {
      if ("token" in span) next.push(span);
      else cutToken(text, span.start, span.end, needle, id, attr, next);
    }
    spans = next;
  }
  return spans.map((s) => ("token" in s ? s : { text: text.slice(s.start, s.end) }));
}

/** Splits text[start, end) at every occurrence of `needle`, honouring the token's lstrip/rstrip. */
function cutToken(text: string, start: number, end: number, needle: string, id: number, attr: number, out: Span[]): void {
  let pos = start;
  for (;;) {
    const match = text.indexOf(needle, pos);
    if (match < 0 || match + needle.length > end) {
      if (pos < end) out.push({ start: pos, end });
      return;
    }
    let leftEnd = match;
    if (attr & Attr.LSTRIP) while (leftEnd > pos && isAsciiSpace(text.charCodeAt(leftEnd - 1))) leftEnd--;
    if (leftEnd > pos) out.push({ start: pos, end: leftEnd });
    out.push({ token: id });
    pos = match + needle.length;
    if (attr & Attr.RSTRIP) while (pos < end && isAsciiSpace(text.charCodeAt(pos))) pos++;
  }
}
