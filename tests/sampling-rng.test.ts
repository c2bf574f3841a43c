import { describe, expect, it } from "vitest";
import { randomSeed, Xoshiro128 } from "../kernels/sampling/rng.ts";

const first = (seed: number, n = 6) => {
  const rng = new Xoshiro128(seed);
  return Array.from({ length: n }, () => rng.nextUint32());
};

describe("Xoshiro128 (xoshiro128** seeded by SplitMix64)", () => {
  // Expected values from Vigna's reference C code (xoshiro128starstar.c with splitmix64.c for the
  // seeding: s[0..1] = low/high half of the first SplitMix64 output, s[2..3] of the second),
  // compiled with gcc on x86-64: the JS port must reproduce the C stream bit for bit.
  it("matches the C reference stream", () => {
    expect(first(0)).toEqual([3737715805, 2584255861, 2876756834, 3286328325, 1553311962, 1625202774]);
    expect(first(42)).toEqual([1776835114, 4165204688, 17111135, 2317295270, 2792088233, 2554630222]);
    expect(first(-1)).toEqual([477689756, 2493998634, 555695776, 607808419, 61340979, 301466976]);
    expect(first(Number.MAX_SAFE_INTEGER)).toEqual([1233166643, 1287031142, 661813442, 2960669951, 2601079046, 1036114921]);
  });

  it("doubles are uniform in [0, 1)", () => {
    const rng = new Xoshiro128(7);
    const bins = new Array(10).fill(0);
    let min = 1;
    let max = 0;
    for (let i = 0; i < 100_000; i++) {
      const u = rng.nextDouble();
      min = Math.min(min, u);
      max = Math.max(max, u);
      bins[Math.floor(u * 10)]++;
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    // Chi-square with 9 degrees of freedom; 27.88 is the 0.1% critical value.
    const chi2 = bins.reduce((s, c) => s + (c - 10_000) ** 2 / 10_000, 0);
    expect(chi2).toBeLessThan(27.88);
  });

  it("rejects seeds that are not safe integers", () => {
    for (const seed of [1.5, NaN, Infinity, 2 ** 60]) expect(() => new Xoshiro128(seed)).toThrow(RangeError);
  });

  it("random seeds are 32-bit integers that differ", () => {
    const seeds = new Set(Array.from({ length: 8 }, randomSeed));
    for (const s of seeds) expect(Number.isInteger(s) && s >= 0 && s < 2 ** 32).toBe(true);
    expect(seeds.size).toBeGreaterThan(1);
  });
});
