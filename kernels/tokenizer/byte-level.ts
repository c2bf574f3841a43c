/**
 * GPT-2's byte-level alphabet: every byte maps to one printable character, so that byte-level
 * BPE vocabularies can store arbitrary bytes as text. Printable Latin-1 bytes map to themselves,
 * the others to U+0100 onwards in byte order.
 */

function isPrintableByte(b: number): boolean {
  return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

const BYTE_TO_CHAR: string[] = new Array(256);
const CHAR_TO_BYTE = new Map<string, number>();
{
  let next = 0x100;
  for (let b = 0; b < 256; b++) {
    const ch = String.fromCharCode(isPrintableByte(b) ? b : next++);
    BYTE_TO_CHAR[b] = ch;
    CHAR_TO_BYTE.set(ch, b);
  }
}

/** The byte-level character of one byte. */
export function byteChar(b: number): string {
  return BYTE_TO_CHAR[b]!;
}

/** The byte a byte-level character stands for, or undefined for other characters. */
export function charByte(ch: string): number | undefined {
  return CHAR_TO_BYTE.get(ch);
}

/** Appends the byte-level characters of one codepoint's UTF-8 encoding. */
export function byteEncodeCodepoint(cp: number, out: string[]): void {
  if (cp < 0x80) out.push(BYTE_TO_CHAR[cp]!);
  else if (cp < 0x800) out.push(BYTE_TO_CHAR[0xc0 | (cp >> 6)]!, BYTE_TO_CHAR[0x80 | (cp & 0x3f)]!);
  else if (cp < 0x10000) {
    out.push(BYTE_TO_CHAR[0xe0 | (cp >> 12)]!, BYTE_TO_CHAR[0x80 | ((cp >> 6) & 0x3f)]!, BYTE_TO_CHAR[0x80 | (cp & 0x3f)]!);
  } else {
    out.push(
      BYTE_TO_CHAR[0xf0 | (cp >> 18)]!,
      BYTE_TO_CHAR[0x80 | ((cp >> 12) & 0x3f)]!,
      BYTE_TO_CHAR[0x80 | ((cp >> 6) & 0x3f)]!,
      BYTE_TO_CHAR[0x80 | (cp & 0x3f)]!,
    );
  }
}
