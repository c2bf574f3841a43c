import { describe, expect, it } from "vitest";
import { isGreedy, Sampler, Xoshiro128, type SamplingParams } from "../kernels/sampling/index.ts";

const logitsOf = (values: number[]) => Float32Array.from(values);
/** Logits whose softmax (at temperature 1) is `probs`. */
const fromProbs = (probs: number[]) => logitsOf(probs.map(Math.log));

/** token → probability of the sampler's final distribution. */
function dist(params: SamplingParams, logits: Float32Array, history: number[] = []): Map<number, number> {
  return new Map(new Sampler(params, logits.length).distribution(logits, history).map((t) => [t.token, t.p]));
}

function expectDist(actual: Map<number, number>, expected: Record<number, number>, digits = 6): void {
  expect([...actual.keys()].sort((a, b) => a - b)).toEqual(Object.keys(expected).map(Number));
  for (const [token, p] of Object.entries(expected)) expect(actual.get(Number(token))!).toBeCloseTo(p, digits);
}

const normalize = (ws: number[]) => {
  const s = ws.reduce((a, b) => a + b, 0);
  return ws.map((w) => w / s);
};

const P = [0.5, 0.3, 0.15, 0.05];

describe("greedy", () => {
  it("temperature 0 takes the argmax, the first index on ties", () => {
    const s = new Sampler({ temperature: 0 }, 5);
    expect(s.sample(logitsOf([1, 3, 2, 3, -1]), [])).toBe(1);
    expect(s.sample(logitsOf([-5, -5, -5, -5, -5]), [])).toBe(0);
    expect(s.distribution(logitsOf([0, 1, 9, 9, 0]), [])).toEqual([{ token: 2, p: 1 }]);
  });

  it("top-k 1 is greedy too, whatever the seed", () => {
    const logits = logitsOf([0.2, 2, 2, 1.9]);
    for (const seed of [1, 2, 3]) expect(new Sampler({ topK: 1, seed }, 4).sample(logits, [])).toBe(1);
  });

  it("isGreedy says when the seed cannot matter", () => {
    expect(isGreedy({ temperature: 0 })).toBe(true);
    expect(isGreedy({ topK: 1, temperature: 0.8 })).toBe(true);
    expect(isGreedy({})).toBe(false);
    expect(isGreedy({ temperature: 0.1, topK: 2 })).toBe(false);
  });

  it("greedy still applies bias and penalties", () => {
    expect(new Sampler({ temperature: 0, logitBias: { 2: 1.5 } }, 3).sample(logitsOf([0, 1, 0]), [])).toBe(2);
    expect(new Sampler({ temperature: 0, repeatPenalty: 3 }, 3).sample(logitsOf([0, 1, 0.5]), [1])).toBe(2);
  });
});

describe("the distribution after each filter", () => {
  it("no filter: softmax of the logits", () => {
    expectDist(dist({}, fromProbs(P)), { 0: 0.5, 1: 0.3, 2: 0.15, 3: 0.05 });
  });

  it("temperature reshapes: p^(1/T), renormalized", () => {
    const expected = normalize(P.map((p) => p ** 2));
    expectDist(dist({ temperature: 0.5 }, fromProbs(P)), Object.fromEntries(expected.map((p, i) => [i, p])));
  });

  it("top-k keeps the k most likely (lower id first on ties)", () => {
    expectDist(dist({ topK: 2 }, fromProbs(P)), { 0: 0.5 / 0.8, 1: 0.3 / 0.8 });
    expectDist(dist({ topK: 2 }, logitsOf([1, 3, 3, 3])), { 1: 0.5, 2: 0.5 });
    expectDist(dist({ topK: 10 }, fromProbs(P)), { 0: 0.5, 1: 0.3, 2: 0.15, 3: 0.05 });
  });

  it("top-p keeps the shortest most-likely prefix whose mass reaches p", () => {
    expectDist(dist({ topP: 0.75 }, fromProbs(P)), { 0: 0.5 / 0.8, 1: 0.3 / 0.8 });
    expectDist(dist({ topP: 0.9 }, fromProbs(P)), { 0: 0.5 / 0.95, 1: 0.3 / 0.95, 2: 0.15 / 0.95 });
    expectDist(dist({ topP: 0.4 }, fromProbs(P)), { 0: 1 });
    expectDist(dist({ topP: 1 }, fromProbs(P)), { 0: 0.5, 1: 0.3, 2: 0.15, 3: 0.05 });
  });

  it("min-p drops tokens below minP × the best probability", () => {
    expectDist(dist({ minP: 0.25 }, fromProbs(P)), { 0: 0.5 / 0.95, 1: 0.3 / 0.95, 2: 0.15 / 0.95 });
    expectDist(dist({ minP: 0.5 }, fromProbs(P)), { 0: 0.5 / 0.8, 1: 0.3 / 0.8 });
    expectDist(dist({ minP: 1 }, fromProbs(P)), { 0: 1 });
  });

  it("llama.cpp's order: top-p and min-p judge the temperature-1 distribution, temperature comes last", () => {
    // At T = 2 the distribution is flatter, but top-p 0.75 still keeps two tokens, then reshapes them.
    const [a, b] = normalize([Math.sqrt(0.5), Math.sqrt(0.3)]);
    expectDist(dist({ topP: 0.75, temperature: 2 }, fromProbs(P)), { 0: a!, 1: b! });
    // top-k first, then top-p over what top-k left: 0.5/0.8 = 0.625 ≥ 0.6.
    expectDist(dist({ topK: 2, topP: 0.6 }, fromProbs(P)), { 0: 1 });
    // top-p then min-p: top-p 0.9 keeps three; min-p 0.5 of those keeps two.
    expectDist(dist({ topP: 0.9, minP: 0.5 }, fromProbs(P)), { 0: 0.5 / 0.8, 1: 0.3 / 0.8 });
  });

  it("top-p over a flat distribution keeps exactly the nucleus", () => {
    // 3000 tokens, nearly uniform: the nucleus holds thousands of them, spread over many logit buckets.
    const n = 3000;
    const logits = logitsOf(Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.3));
    logits[n - 1] = -1e4; // an outlier far below the rest must not coarsen the buckets
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
    const weights = order.map((i) => Math.exp(logits[i]!));
    const total = weights.reduce((a, b) => a + b, 0);
    let mass = 0;
    let keep = 0;
    while (mass < 0.9 * total) mass += weights[keep++]!;
    const actual = dist({ topP: 0.9 }, logits);
    expect(keep).toBeGreaterThan(2000);
    expect(new Set(actual.keys())).toEqual(new Set(order.slice(0, keep)));
  });
});

describe("penalties and bias", () => {
  /** log p(token) − log p(0): the adjusted logit differences, read back from the distribution. */
  const relative = (d: Map<number, number>) => [...d.keys()].sort((a, b) => a - b).map((t) => Math.log(d.get(t)!) - Math.log(d.get(0)!));

  it("repetition divides positive logits and multiplies the rest; frequency and presence subtract", () => {
    const logits = logitsOf([2, -1, 0.5, 3]);
    const history = [0, 1, 1, 3, 3, 3];
    const d = dist({ repeatPenalty: 2, frequencyPenalty: 0.5, presencePenalty: 0.25 }, logits, history);
    // 0: 2/2 − 1·0.5 − 0.25 = 0.25; 1: −1·2 − 2·0.5 − 0.25 = −3.25; 2: unseen, 0.5; 3: 3/2 − 3·0.5 − 0.25 = −0.25
    const adjusted = [0.25, -3.25, 0.5, -0.25];
    relative(d).forEach((r, i) => expect(r).toBeCloseTo(adjusted[i]! - adjusted[0]!, 5));
  });

  it("negative penalties reward repetition (OpenAI allows −2..2)", () => {
    const d = dist({ frequencyPenalty: -1 }, logitsOf([0, 0]), [1, 1]);
    expect(Math.log(d.get(1)! / d.get(0)!)).toBeCloseTo(2, 5);
  });

  it("only the last penaltyLastN tokens count; −1 counts all, 0 none", () => {
    const logits = logitsOf([0, 0, 0, 0]);
    const history = [0, 0, 0, 1, 2];
    const penalized = (lastN: number) => {
      const d = dist({ presencePenalty: 1, frequencyPenalty: 1, penaltyLastN: lastN }, logits, history);
      return relative(d).map((r) => Math.round(r * 1e4) / 1e4 + 0);
    };
    // window [1, 2]: tokens 1 and 2 lose 2 each, 0 and 3 are untouched.
    expect(penalized(2)).toEqual([0, -2, -2, 0]);
    // whole history: token 0 loses 3 + 1 = 4.
    expect(penalized(-1)).toEqual([0, 2, 2, 4]);
    expect(penalized(64)).toEqual([0, 2, 2, 4]);
    expect(penalized(0)).toEqual([0, 0, 0, 0]);
  });

  it("the default window is llama.cpp's 64 tokens", () => {
    const history = [0, ...new Array(64).fill(1)];
    const d = dist({ presencePenalty: 5 }, logitsOf([0, 0]), history);
    expect(d.get(0)! / d.get(1)!).toBeCloseTo(Math.exp(5), 3);
  });

  it("bias is added before the penalties (llama.cpp's order)", () => {
    // (1 + 1) / 2 = 1, not 1/2 + 1 = 1.5.
    const d = dist({ logitBias: new Map([[0, 1]]), repeatPenalty: 2 }, logitsOf([1, 0]), [0]);
    expect(Math.log(d.get(0)! / d.get(1)!)).toBeCloseTo(1, 5);
  });

  it("−Infinity bans a token; banning every token is an error", () => {
    const s = new Sampler({ logitBias: { 1: -Infinity }, seed: 1 }, 3);
    const logits = logitsOf([0, 10, 0]);
    for (let i = 0; i < 200; i++) expect(s.sample(logits, [])).not.toBe(1);
    expect(s.distribution(logits, []).map((t) => t.token)).toEqual([0, 2]);
    expect(new Sampler({ logitBias: { 1: -Infinity }, temperature: 0 }, 3).sample(logits, [])).toBe(0);
    const all = new Sampler({ logitBias: { 0: -Infinity, 1: -Infinity } }, 2);
    expect(() => all.sample(logitsOf([1, 2]), [])).toThrow(/every logit is -Infinity/);
  });

  it("the caller's logits are left untouched", () => {
    const logits = logitsOf([1, 2, 3]);
    new Sampler({ repeatPenalty: 2, logitBias: { 0: 4 }, seed: 1 }, 3).sample(logits, [2]);
    expect([...logits]).toEqual([1, 2, 3]);
  });

  it("history ids outside the vocabulary are refused", () => {
    expect(() => new Sampler({ repeatPenalty: 1.1 }, 3).sample(logitsOf([0, 0, 0]), [0, 3])).toThrow(/history\[1\] = 3/);
  });
});

describe("seeded sampling", () => {
  const logits = logitsOf(Array.from({ length: 50 }, (_, i) => Math.cos(i)));
  const run = (params: SamplingParams, n = 200) => {
    const s = new Sampler(params, logits.length);
    return Array.from({ length: n }, () => s.sample(logits, []));
  };

  it("the same seed gives the same tokens; another seed, others", () => {
    const params = { temperature: 1.2, topK: 30, topP: 0.95, minP: 0.01 };
    expect(run({ ...params, seed: 5 })).toEqual(run({ ...params, seed: 5 }));
    expect(run({ ...params, seed: 5 })).not.toEqual(run({ ...params, seed: 6 }));
  });

  it("without a seed, a random one is drawn and reported", () => {
    const a = new Sampler({}, 3);
    const b = new Sampler({}, 3);
    expect(a.seed).not.toBe(b.seed);
    expect(run({ seed: a.seed })).toEqual(run({ seed: a.seed }));
  });

  it("20k draws follow the distribution (chi-square)", () => {
    const probs = [0.3, 0.2, 0.15, 0.1, 0.1, 0.08, 0.05, 0.02];
    const params: SamplingParams = { temperature: 0.7, seed: 1234 };
    const small = fromProbs(probs);
    const expected = normalize(probs.map((p) => p ** (1 / 0.7)));
    const counts = new Array(probs.length).fill(0);
    const s = new Sampler(params, probs.length);
    const draws = 20_000;
    for (let i = 0; i < draws; i++) counts[s.sample(small, [])]++;
    const chi2 = counts.reduce((acc, c, i) => acc + (c - draws * expected[i]!) ** 2 / (draws * expected[i]!), 0);
    expect(chi2).toBeLessThan(24.32); // 7 degrees of freedom, 0.1% critical value
  });
});

describe("a 150k vocabulary", () => {
  const nVocab = 150_000;
  // Gaussian logits (σ = 2), roughly what a language model's look like.
  const rng = new Xoshiro128(1);
  const logits = new Float32Array(nVocab);
  for (let i = 0; i < nVocab; i++) logits[i] = 2 * Math.sqrt(-2 * Math.log(1 - rng.nextDouble())) * Math.cos(2 * Math.PI * rng.nextDouble());
  const msPerToken = (s: Sampler, n: number) => {
    const t0 = performance.now();
    const drawn = Array.from({ length: n }, () => s.sample(logits, []));
    return { drawn, ms: (performance.now() - t0) / n };
  };
  // Generous bounds (the test machine may be loaded): ranking all 150k ids with a comparator
  // costs hundreds of milliseconds; partial selection and bucketing cost a few.

  it("top-k draws only from the k best, without sorting the vocabulary", () => {
    const threshold = Float32Array.from(logits).sort()[nVocab - 40]!;
    const { drawn, ms } = msPerToken(new Sampler({ topK: 40, topP: 0.95, minP: 0.05, temperature: 0.8, seed: 3 }, nVocab), 20);
    for (const t of drawn) expect(logits[t]!).toBeGreaterThanOrEqual(threshold);
    expect(new Set(drawn).size).toBeGreaterThan(1);
    expect(ms).toBeLessThan(50);
  });

  it("top-p alone ranks only the bucket where the nucleus ends", () => {
    const { drawn, ms } = msPerToken(new Sampler({ topP: 0.5, seed: 3 }, nVocab), 10);
    const threshold = Float32Array.from(logits).sort()[Math.floor(nVocab * 0.5)]!;
    for (const t of drawn) expect(logits[t]!).toBeGreaterThanOrEqual(threshold);
    expect(ms).toBeLessThan(150);
  });
});

describe("parameter validation", () => {
  const bad: [SamplingParams, RegExp][] = [
    [{ temperature: -0.1 }, /temperature must be/],
    [{ temperature: NaN }, /temperature must be/],
    [{ topK: -1 }, /topK must be an integer ≥ 0/],
    [{ topK: 2.5 }, /topK/],
    [{ topP: 0 }, /topP must be in \(0, 1\]/],
    [{ topP: 1.01 }, /topP/],
    [{ minP: -0.1 }, /minP must be in \[0, 1\]/],
    [{ minP: 2 }, /minP/],
    [{ repeatPenalty: 0 }, /repeatPenalty must be/],
    [{ frequencyPenalty: Infinity }, /frequencyPenalty/],
    [{ presencePenalty: NaN }, /presencePenalty/],
    [{ penaltyLastN: -2 }, /penaltyLastN/],
    [{ seed: 0.5 }, /seed must be a safe integer/],
    [{ logitBias: { 10: 1 } }, /logitBias token id must be an integer in \[0, 10\)/],
    [{ logitBias: new Map([[-1, 1]]) }, /logitBias token id/],
    [{ logitBias: { 3: NaN } }, /logitBias\[3\] must be finite or -Infinity/],
    [{ logitBias: { 3: Infinity } }, /logitBias\[3\]/],
  ];
  for (const [params, message] of bad) {
    it(`${JSON.stringify(params, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v instanceof Map ? [...v] : v))} → RangeError`, () => {
      expect(() => new Sampler(params, 10)).toThrow(RangeError);
      expect(() => new Sampler(params, 10)).toThrow(message);
    });
  }

  it("logits of the wrong length are refused", () => {
    expect(() => new Sampler({}, 4).sample(new Float32Array(3), [])).toThrow(/expected 4 logits, got 3/);
  });
});
