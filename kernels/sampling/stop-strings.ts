/**
 * Stop strings over streamed text (OpenAI semantics: the text before the stop string is
 * returned, the stop string and everything after it are not). Text arrives in pieces that may
 * split a stop string anywhere, so the matcher holds back the longest tail that could still
 * grow into one and releases it as soon as it cannot.
 *
 * The stop that wins is the one that completes first in the stream; among stops completing at
 * the same point, the longest. That rule does not depend on how the text was split into pieces.
 */

export interface StopResult {
  /** Text safe to emit now. */
  text: string;
  /** A stop string was found; nothing after it will be emitted. */
  stopped: boolean;
}

export class StopStringMatcher {
  private readonly stops: readonly string[];
  private held = "";
  private done = false;

  constructor(stops: readonly string[]) {
    stops.forEach((s, i) => {
      if (s.length === 0) throw new RangeError(`stop[${i}] is empty: stop strings must hold at least one character`);
    });
    this.stops = [...stops];
  }

  /** Feeds the next piece of text. After a stop, further pieces are ignored. */
  push(piece: string): StopResult {
    if (this.done) return { text: "", stopped: true };
    const text = this.held + piece;
    const stopAt = this.firstCompletedStop(text);
    if (stopAt >= 0) {
      this.done = true;
      this.held = "";
      return { text: text.slice(0, stopAt), stopped: true };
    }
    const keep = this.longestPendingTail(text);
    this.held = text.slice(text.length - keep);
    return { text: text.slice(0, text.length - keep), stopped: false };
  }

  /** The held text, released at the end of the stream (empty after a stop). */
  flush(): string {
    const rest = this.held;
    this.held = "";
    return rest;
  }

  /** Where the stop that completes earliest (longest on a tie) starts in `text`; −1 if none. */
  private firstCompletedStop(text: string): number {
    let bestStart = -1;
    let bestEnd = Infinity;
    for (const stop of this.stops) {
      const start = text.indexOf(stop);
      if (start < 0) continue;
      const end = start + stop.length;
      if (end < bestEnd || (end === bestEnd && start < bestStart)) {
        bestStart = start;
        bestEnd = end;
      }
    }
    return bestStart;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
  private longestPendingTail(text: string): number {
    let longest = 0;
    for (const stop of this.stops) {
      for (let k = Math.min(stop.length - 1, text.length); k > longest; k--) {
        if (text.endsWith(stop.slice(0, k))) {
          longest = k;
          break;
        }
      }
    }
    return longest;
  }
}
