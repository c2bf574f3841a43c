/**
 * The merge loop SPM and BPE share: a string cut into codepoint symbols, kept as a linked list,
 * in which the adjacent pair with the lowest priority value (leftmost on ties) is merged until
 * no pair qualifies.
 */
import { Heap } from "./heap.ts";
import { utf8Bytes } from "./unicode.ts";

/** A candidate merge; the symbol lengths it was made with tell when it has gone stale. */
interface Pair {
  left: number;
  right: number;
  leftLength: number;
  rightLength: number;
  priority: number;
}

const lowestFirst = (a: Pair, b: Pair): boolean => a.priority < b.priority || (a.priority === b.priority && a.left < b.left);

export class SymbolList {
  private readonly start: Int32Array;
  /** UTF-16 length of each symbol; 0 once merged into its left neighbour. */
  private readonly len: Int32Array;
  private readonly prev: Int32Array;
  private readonly next: Int32Array;

  constructor(private readonly source: string) {
    const starts: number[] = [];
    for (let i = 0; i < source.length; i += source.codePointAt(i)! > 0xffff ? 2 : 1) starts.push(i);
    const n = starts.length;
    this.start = Int32Array.from(starts);
    this.len = new Int32Array(n);
    this.prev = new Int32Array(n);
    this.next = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      this.len[i] = (i + 1 < n ? starts[i + 1]! : source.length) - starts[i]!;
      this.prev[i] = i - 1;
      this.next[i] = i + 1 < n ? i + 1 : -1;
    }
  }

  text(i: number): string {
    return this.source.slice(this.start[i]!, this.start[i]! + this.len[i]!);
  }

  /** The text of two adjacent symbols together. */
  joinedText(left: number, right: number): string {
    return this.source.slice(this.start[left]!, this.start[right]! + this.len[right]!);
  }

  /** Merges pairs best-first; `priority` gives a pair's priority, or undefined if it may not merge. */
  mergeBest(priority: (left: number, right: number) => number | undefined): void {
    const queue = new Heap<Pair>(lowestFirst);
    const offer = (left: number, right: number) => {
      if (left < 0 || right < 0) return;
      const p = priority(left, right);
      if (p !== undefined) queue.push({ left, right, leftLength: this.len[left]!, rightLength: this.len[right]!, priority: p });
    };
    for (let i = 1; i < this.len.length; i++) offer(i - 1, i);
    for (let pair = queue.pop(); pair !== undefined; pair = queue.pop()) {
      const { left, right } = pair;
      if (this.len[left] !== pair.leftLength || this.len[right] !== pair.rightLength) continue;
      this.len[left] = pair.leftLength + pair.rightLength;
      this.len[right] = 0;
      const after = this.next[right]!;
      this.next[left] = after;
      if (after >= 0) this.prev[after] = left;
      offer(this.prev[left]!, left);
      offer(left, after);
    }
  }

  /** Appends each remaining symbol's token, or the tokens of its bytes when it is not one. */
  emit(tokenToId: ReadonlyMap<string, number>, byteTokens: ReadonlyArray<number | undefined>, out: number[]): void {
    if (this.len.length === 0) return;
    for (let i = 0; i !== -1; i = this.next[i]!) {
      const piece = this.text(i);
      const id = tokenToId.get(piece);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      for (const b of utf8Bytes(piece)) {
        const byteId = byteTokens[b];
        if (byteId !== undefined) out.push(byteId);
      }
    }
  }
}
