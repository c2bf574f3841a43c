import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { selectTop } from "../kernels/sampling/select-top.ts";

describe("selectTop (partial selection)", () => {
  it("the first k equal a full sort by score, then id; the array stays a permutation", () => {
    fc.assert(
      fc.property(
        // Few distinct scores, so ties are common.
        fc.array(fc.integer({ min: -4, max: 4 }), { minLength: 1, maxLength: 200 }),
        fc.nat({ max: 220 }),
        fc.nat(),
        (values, k, shift) => {
          const scores = Float32Array.from(values, (v) => v / 2);
          const n = scores.length;
          // Start from a rotated order so the input order is not always 0..n-1.
          const ids = Int32Array.from({ length: n }, (_, i) => (i + shift) % n);
          selectTop(ids, n, k, scores);
          const expected = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
          expect([...ids.subarray(0, Math.min(k, n))]).toEqual(expected.slice(0, Math.min(k, n)));
          expect([...ids].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
        },
      ),
      { seed: 42, numRuns: 300 },
    );
  });

  it("works on a sub-range of a larger array (ids index the scores)", () => {
    const scores = Float32Array.from([5, 1, 4, 2, 3]);
    const ids = Int32Array.from([0, 1, 2, 3, 4]);
    selectTop(ids.subarray(1, 5), 4, 2, scores);
    expect(ids[0]).toBe(0);
    expect([...ids.subarray(1, 3)]).toEqual([2, 4]);
    expect([...ids.subarray(3)].sort()).toEqual([1, 3]);
  });
});
