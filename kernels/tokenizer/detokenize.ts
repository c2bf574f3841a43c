/**
 * Token ids back to text as llama.cpp's token_to_piece and detokenize do it: byte tokens and
 * GPT-2's byte-level alphabet become raw bytes, ▁ becomes a space, the first piece loses one
 * leading space when the vocabulary adds a space prefix, and some vocabularies undo the spaces
 * HF decoders put before punctuation ("clean spaces"). Decoding is incremental: a stream
 * emits only complete UTF-8 characters, and a whole decode is one stream.
 */
import { Attr } from "./attrs.ts";
import { charByte } from "./byte-level.ts";
import { utf8Bytes } from "./unicode.ts";
import type { Vocab } from "./vocab.ts";

const SPACE = 0x20;
const APOSTROPHE = 0x27;

export interface DecodeOptions {
  /** Drop a leading BOS and trailing EOS the vocabulary adds, and render control tokens as nothing. */
  skipSpecial?: boolean;
}

/** GPT-2 byte-level text to bytes; characters outside the alphabet are spelled out as llama.cpp does. */
function byteLevelDecode(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const b = charByte(ch);
    if (b !== undefined) out.push(b);
    else {
      const hex = Array.from(utf8Bytes(ch), (x) => x.toString(16).padStart(2, "0")).join("");
      out.push(...utf8Bytes(`[UNK_BYTE_0x${hex}${text}]`));
    }
  }
  return Uint8Array.from(out);
}

/**
 * Removes the spaces HF decoders add: " ?", " !", " .", " ," lose the space; " ' " loses both;
 * " 's", " 'm", " 're", " 've" lose the space. Three passes in llama.cpp's order.
 */
function cleanSpaces(text: readonly number[]): Uint8Array {
  const out: number[] = [];
  // Pass 1: space before ? ! . ,
  for (let i = 0; i < text.length; i++) {
    const x = text[i]!;
    if (i > 0 && text[i - 1] === SPACE && (x === 0x3f || x === 0x21 || x === 0x2e || x === 0x2c)) out.pop();
    out.push(x);
  }
  // Pass 2: " ' " -> "'"
  const pass1 = out.splice(0);
  for (let i = 0; i < pass1.length; i++) {
    const x = pass1[i]!;
    if (i > 0 && x === APOSTROPHE && i + 1 < pass1.length && pass1[i - 1] === SPACE && pass1[i + 1] === SPACE) {
      out.pop();
      out.push(x);
      // llama.cpp blanks the space after in place, so the byte after it cannot be a match
      // (its left neighbour is no longer a space): it is copied as is.
      i += 2;
      if (i < pass1.length) out.push(pass1[i]!);
      continue;
    }
    out.push(x);
  }
  // Pass 3: contractions
  const pass2 = out.splice(0);
  for (let i = 0; i < pass2.length; i++) {
    const x = pass2[i]!;
    if (i > 0 && pass2[i - 1] === SPACE && x === APOSTROPHE && i + 1 < pass2.length) {
      const x1 = pass2[i + 1]!;
      const x2 = i + 2 < pass2.length ? pass2[i + 2] : undefined;
      const sOrM = x1 === 0x73 || x1 === 0x6d;
      const reOrVe = (x1 === 0x72 || x1 === 0x76) && x2 === 0x65;
      if (sOrM || reOrVe) out.pop();
    }
    out.push(x);
  }
  return Uint8Array.from(out);
}

/**
 * Whether cleaning the text before and after a cut following byte `b` separately gives the same
 * as cleaning it whole: every rule needs a space or an apostrophe right before the cut, except
 * " 're"/" 've", which look one byte past the r or v.
 */
function isCleanCutAfter(b: number): boolean {
  return b !== SPACE && b !== APOSTROPHE && b !== 0x72 && b !== 0x76; // r v: " 're", " 've"
}

export class Detokenizer {
  private readonly pieces: Array<Uint8Array | undefined>;

  constructor(private readonly vocab: Vocab) {
    this.pieces = new Array(vocab.tokens.length);
  }

  /** The bytes of one token (llama.cpp's token_to_piece); `special` renders control tokens. */
  pieceBytes(id: number, special: boolean): Uint8Array {
    const { attrs } = this.vocab;
    if (!Number.isInteger(id) || id < 0 || id >= attrs.length) {
      throw new RangeError(`token id ${id} is out of range (vocabulary of ${attrs.length})`);
    }
    if (!special && attrs[id]! & (Attr.UNKNOWN | Attr.CONTROL)) return new Uint8Array(0);
    return (this.pieces[id] ??= this.renderPiece(id));
  }

  private renderPiece(id: number): Uint8Array {
    const { type, escapeWhitespaces } = this.vocab;
    const attr = this.vocab.attrs[id]!;
    const text = this.vocab.tokens[id]!;
    if (attr & (Attr.UNKNOWN | Attr.CONTROL | Attr.USER_DEFINED)) return utf8Bytes(text);
    if (attr & Attr.NORMAL) {
      if (type === "bpe" && !escapeWhitespaces) return byteLevelDecode(text);
      return utf8Bytes(text.replaceAll("\u2581", " "));
    }
    if (attr & Attr.BYTE) return Uint8Array.of((parseInt(text.slice(3, 5), 16) || 0) & 0xff);
    return new Uint8Array(0);
  }

  stream(options: DecodeOptions = {}): StreamDecoder {
    return new StreamDecoder(this.vocab, new PieceSequence(this.vocab, this, options.skipSpecial ?? false));
  }

  /** The whole text at once: the pieces, then clean-up over all of them (what a stream must equal). */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const sequence = new PieceSequence(this.vocab, this, options.skipSpecial ?? false);
    const bytes: number[] = [];
    for (const id of ids) for (const b of sequence.push(id)) bytes.push(b);
    return new TextDecoder().decode(this.vocab.cleanSpaces ? cleanSpaces(bytes) : Uint8Array.from(bytes));
  }
}

const EMPTY: Uint8Array = new Uint8Array(0);

/**
 * The bytes each token contributes, as llama.cpp's detokenize takes them before clean-up: with
 * skipSpecial a leading BOS and a trailing EOS that the vocabulary adds are dropped (so an EOS
 * is held until the next token shows it was not the last), and the first piece loses one
 * leading space when the vocabulary adds a space prefix.
 */
class PieceSequence {
  private first = true;
  private removeSpace: boolean;
  private heldEos = false;

  constructor(
    private readonly vocab: Vocab,
    private readonly detokenizer: Detokenizer,
    private readonly skipSpecial: boolean,
  ) {
    this.removeSpace = vocab.addSpacePrefix;
  }

  push(id: number): Uint8Array {
    const { addBos, addEos, special } = this.vocab;
    this.detokenizer.pieceBytes(id, true); // validates the id before any state changes
    if (this.first) {
      this.first = false;
      if (this.skipSpecial && addBos && id === special.bos) {
        this.removeSpace = false; // llama.cpp keeps the leading space after a removed BOS
        return EMPTY;
      }
    }
    const held = this.heldEos ? this.piece(special.eos!) : EMPTY;
    this.heldEos = this.skipSpecial && addEos && id === special.eos;
    if (this.heldEos) return held;
    const bytes = this.piece(id);
    return held.length === 0 ? bytes : Uint8Array.of(...held, ...bytes);
  }

  private piece(id: number): Uint8Array {
    const bytes = this.detokenizer.pieceBytes(id, !this.skipSpecial);
    const strip = this.removeSpace && bytes[0] === SPACE;
    this.removeSpace = false;
    return strip ? bytes.subarray(1) : bytes;
  }
}

/**
 * Incremental decoding whose concatenated output equals a whole decode of the same ids:
 * bytes that clean-up may still change, and partial UTF-8 characters, are held back.
 * A trailing EOS (with skipSpecial) is dropped at `flush`.
 */
export class StreamDecoder {
  /** Bytes that clean-up may still change. */
  private pending: number[] = [];
  private readonly utf8 = new TextDecoder("utf-8");

  constructor(
    private readonly vocab: Vocab,
    private readonly pieces: PieceSequence,
  ) {}

  /** Adds one token; returns the text that is now final (never a partial character). */
  push(id: number): string {
    return this.utf8.decode(this.pushBytes(id), { stream: true });
  }

  /** Ends the stream: returns whatever is left. */
  flush(): string {
    return this.utf8.decode(this.flushBytes(), { stream: true }) + this.utf8.decode();
  }

  /** Adds one token; returns the bytes that are now final (possibly part of a character). */
  pushBytes(id: number): Uint8Array {
    const bytes = this.pieces.push(id);
    if (!this.vocab.cleanSpaces) return bytes;
    // Everything pending before this piece is uncuttable, so only the new bytes can hold a cut.
    const before = this.pending.length;
    for (const b of bytes) this.pending.push(b);
    let cut = this.pending.length;
    while (cut > before && !isCleanCutAfter(this.pending[cut - 1]!)) cut--;
    if (cut === before) return EMPTY;
    const ready = cleanSpaces(cut === this.pending.length ? this.pending : this.pending.slice(0, cut));
    this.pending = this.pending.slice(cut);
    return ready;
  }

  /** Ends the stream: returns the bytes still held back. */
  flushBytes(): Uint8Array {
    const rest = this.pending.length > 0 ? cleanSpaces(this.pending) : EMPTY;
    this.pending = [];
    return rest;
  }
}
