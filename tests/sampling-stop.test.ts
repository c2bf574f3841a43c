import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { StopStringMatcher } from "../kernels/sampling/index.ts";

/** Feeds the pieces; returns what was emitted and whether (and at which piece) it stopped. */
function run(stops: string[], pieces: string[]): { emitted: string[]; stoppedAt: number; tail: string } {
  const m = new StopStringMatcher(stops);
  const emitted: string[] = [];
  for (let i = 0; i < pieces.length; i++) {
    const r = m.push(pieces[i]!);
    emitted.push(r.text);
    if (r.stopped) return { emitted, stoppedAt: i, tail: m.flush() };
  }
  return { emitted, stoppedAt: -1, tail: m.flush() };
}

/** The reference: cut the whole text before the stop that ends first (longest on a tie). */
function truncateAtStop(text: string, stops: string[]): { text: string; stopped: boolean } {
  let best: { start: number; end: number } | undefined;
  for (const s of stops) {
    const start = text.indexOf(s);
    if (start < 0) continue;
    const end = start + s.length;
    if (!best || end < best.end || (end === best.end && start < best.start)) best = { start, end };
  }
  return best ? { text: text.slice(0, best.start), stopped: true } : { text, stopped: false };
}

describe("StopStringMatcher", () => {
  it("no stop strings: every piece passes straight through", () => {
    expect(run([], ["Hel", "lo", "!"]).emitted).toEqual(["Hel", "lo", "!"]);
  });

  it("a stop inside one piece: the text before it is emitted, the stop and the rest are not", () => {
    const r = run(["###"], ["Hello ### world"]);
    expect(r).toEqual({ emitted: ["Hello "], stoppedAt: 0, tail: "" });
  });

  it("a stop spanning pieces: its start is held back until it completes", () => {
    const r = run(["</s>"], ["Hi <", "/", "s> tail"]);
    expect(r.emitted).toEqual(["Hi ", "", ""]);
    expect(r.stoppedAt).toBe(2);
  });

  it("a partial match that turns out not to match is released", () => {
    const r = run(["STOP"], ["a ST", "OR", "Y"]);
    expect(r.emitted).toEqual(["a ", "STOR", "Y"]);
    expect(r.stoppedAt).toBe(-1);
    expect(r.tail).toBe("");
  });

  it("text still held at the end comes out of flush()", () => {
    const r = run(["<|im_end|>"], ["answer<|im"]);
    expect(r.emitted).toEqual(["answer"]);
    expect(r.tail).toBe("<|im");
  });

  it("holds back the longest tail that could start any stop", () => {
    const m = new StopStringMatcher(["xyz", "abcd"]);
    expect(m.push("..abc")).toEqual({ text: "..", stopped: false });
    expect(m.push("x")).toEqual({ text: "abc", stopped: false });
    expect(m.push("yz!")).toEqual({ text: "", stopped: true });
  });

  it("the stop that completes first wins, whatever the split", () => {
    // "bc" completes before "abcd" could: the answer is "a" in one piece or in three.
    expect(run(["abcd", "bc"], ["abcd"]).emitted).toEqual(["a"]);
    expect(run(["abcd", "bc"], ["ab", "c", "d"]).emitted.join("")).toBe("a");
    // Two stops completing together: the longer one is cut.
    expect(run(["c", "bc"], ["abc"]).emitted).toEqual(["a"]);
  });

  it("after a stop, further pieces are ignored", () => {
    const m = new StopStringMatcher(["."]);
    expect(m.push("end. more")).toEqual({ text: "end", stopped: true });
    expect(m.push("ignored")).toEqual({ text: "", stopped: true });
    expect(m.flush()).toBe("");
  });

  it("works with non-ASCII and astral characters", () => {
    const r = run(["🛑"], ["日本", "語\uD83D", "\uDED1 after"]);
    expect(r.emitted.join("")).toBe("日本語");
    expect(r.stoppedAt).toBe(2);
  });

  it("an empty stop string is refused", () => {
    expect(() => new StopStringMatcher(["ok", ""])).toThrow(/stop\[1\] is empty/);
  });

  it("property: emitted text + held text is the input up to the first stop, however it is split", () => {
    const alphabet = fc.constantFrom("a", "b", "c", "<", "/", ">");
    const word = (min: number, max: number) => fc.array(alphabet, { minLength: min, maxLength: max }).map((cs) => cs.join(""));
    fc.assert(
      fc.property(fc.array(word(1, 4), { maxLength: 3 }), fc.array(word(0, 6), { maxLength: 12 }), (stops, pieces) => {
        const m = new StopStringMatcher(stops);
        const expected = truncateAtStop(pieces.join(""), stops);
        let out = "";
        let stopped = false;
        // Nothing emitted along the way may be part of a stop that later completes.
        let neverTooEarly = true;
        for (const piece of pieces) {
          const r = m.push(piece);
          out += r.text;
          if (r.stopped) {
            stopped = true;
            break;
          }
          neverTooEarly &&= expected.text.startsWith(out);
        }
        out += m.flush();
        return neverTooEarly && stopped === expected.stopped && out === expected.text;
      }),
      { seed: 7, numRuns: 1000 },
    );
  });
});
